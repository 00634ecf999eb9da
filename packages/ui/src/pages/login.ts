import { client, currentUser, go } from "../api.js";
import {
  actionButton,
  explainCode,
  field,
  fieldValue,
  form,
  h,
  inputOf,
  messages,
  render,
} from "../dom.js";
import { mfaStep } from "./mfa-step.js";

/**
 * `/ui/`, where a provider sign-in ends by default (GET /auth/oauth/:provider/callback):
 * signed in there, the account page; `?mfaRequired=true` (the lk_mfa cookie is set), the
 * MFA step; `?error=<code>`, the sign-in page saying what went wrong.
 */
export async function landingPage(): Promise<void> {
  const params = new URLSearchParams(location.search);
  if (!params.has("mfaRequired") && !params.has("error")) {
    // A locked session is still one: the account page offers the unlock.
    const signedIn = await currentUser().then(
      (user) => user !== "signed_out",
      () => false,
    );
    if (signedIn) return go("/ui/account");
  }
  loginPage();
}

/** What a provider sign-in's redirect says, taken out of the address bar once read. */
function providerOutcome(): { mfaRequired: boolean; error: string | null } {
  const url = new URL(location.href);
  const outcome = {
    mfaRequired: url.searchParams.get("mfaRequired") === "true",
    error: url.searchParams.get("error"),
  };
  if (url.searchParams.has("mfaRequired") || url.searchParams.has("error")) {
    url.searchParams.delete("mfaRequired");
    url.searchParams.delete("error");
    history.replaceState(null, "", url.pathname + url.search);
  }
  return outcome;
}

export function loginPage(): void {
  const outcome = providerOutcome();
  if (outcome.mfaRequired) {
    mfaStep();
    return;
  }
  // The code comes from the address bar, so anyone can craft one: it is shown as text,
  // and only the contract's codes get a sentence.
  const providerError = outcome.error
    ? h(
        "p",
        { class: "alert", role: "alert" },
        explainCode(
          outcome.error,
          "Signing in with the provider did not work. Try again, or use another way in.",
        ),
      )
    : null;
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
    providerError,
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
