import { client, go } from "../api.js";
import { actionButton, field, fieldValue, form, h, inputOf, messages, render } from "../dom.js";
import { mfaStep } from "./mfa-step.js";

export function loginPage(): void {
  const linkMsg = messages();
  const passkeyMsg = messages();
  const signIn = form(
    {
      label: "Sign in",
      submit: "Sign in",
      onsubmit: async (el) => {
        const remember = el.querySelector<HTMLInputElement>("input[name=rememberMe]")?.checked;
        const result = await client.login({
          identifier: fieldValue(el, "Email or username").trim(),
          password: fieldValue(el, "Password"),
          ...(remember ? { rememberMe: true } : {}),
        });
        if (result.status === "mfa_required") mfaStep();
        else go("/ui/account");
      },
    },
    field("Email or username", { autocomplete: "username", required: true, autofocus: true }),
    field("Password", { type: "password", autocomplete: "current-password", required: true }),
    h(
      "label",
      { class: "check" },
      h("input", { type: "checkbox", name: "rememberMe" }),
      "Keep me signed in on this device",
    ),
  );
  const emailLink = h(
    "button",
    {
      type: "button",
      class: "secondary",
      onclick: async () => {
        const identifier = inputOf(signIn, "Email or username").value.trim();
        if (!identifier.includes("@")) {
          linkMsg.error(new Error("Enter your email address above first."));
          return;
        }
        try {
          await client.requestMagicLink(identifier);
          linkMsg.ok("If an account uses that address, a sign-in link is on its way.");
        } catch (err) {
          linkMsg.error(err);
        }
      },
    },
    "Email me a sign-in link instead",
  );
  // No identifier needed: the browser offers the passkeys it holds for this site. One
  // typed in narrows the choice to that account's passkeys.
  const passkey = actionButton(
    "Sign in with a passkey",
    { class: "secondary" },
    passkeyMsg,
    async () => {
      const identifier = inputOf(signIn, "Email or username").value.trim();
      const remember = signIn.querySelector<HTMLInputElement>("input[name=rememberMe]")?.checked;
      const result = await client.loginWithPasskey({
        ...(identifier ? { identifier } : {}),
        ...(remember ? { rememberMe: true } : {}),
      });
      if (result.status === "mfa_required") mfaStep();
      else go("/ui/account");
    },
  );
  render(
    h("h1", {}, "Sign in"),
    signIn,
    passkey,
    passkeyMsg.el,
    emailLink,
    linkMsg.el,
    h(
      "nav",
      { class: "links", "aria-label": "Other ways in" },
      h("a", { href: "/ui/register" }, "Create an account"),
      h("a", { href: "/ui/forgot-password" }, "Forgot your password?"),
      h("a", { href: "/ui/guest" }, "Continue as a guest"),
    ),
  );
}
