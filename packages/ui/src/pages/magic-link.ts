import { client, go } from "../api.js";
import { form, h, render, takeTokenFromUrl } from "../dom.js";
import { mfaStep } from "./mfa-step.js";

/**
 * The link is used by a click, not on load: mail scanners that open links would
 * otherwise spend the one-time token before its owner does.
 */
export function magicLinkPage(): void {
  const token = takeTokenFromUrl();
  if (!token) {
    render(
      h("h1", {}, "Sign-in link"),
      h("p", { role: "alert", class: "alert" }, "This page needs the link from your email."),
      h("p", {}, h("a", { href: "/ui/login" }, "Sign in another way")),
    );
    return;
  }
  render(
    h("h1", {}, "Sign in with your email link"),
    form({
      label: "Sign in with your email link",
      submit: "Continue",
      onsubmit: async () => {
        const result = await client.verifyMagicLink(token);
        if (result.status === "mfa_required") mfaStep();
        else go("/ui/account");
      },
    }),
  );
}
