import { client, go } from "../api.js";
import { actionButton, field, fieldValue, form, h, messages, render } from "../dom.js";

/** The second step of any sign-in that answered `mfa_required`. */
export function mfaStep(next = "/ui/account"): void {
  const passkeyMsg = messages();
  render(
    h("h1", {}, "Two-factor authentication"),
    h("p", {}, "Enter the 6-digit code from your authenticator app, or one of your backup codes."),
    form(
      {
        label: "Two-factor code",
        submit: "Verify",
        onsubmit: async (el) => {
          const result = await client.loginMfa(fieldValue(el, "Code").trim());
          if (result.status === "signed_in") go(next);
        },
      },
      // No numeric keypad: backup codes have letters. Typed by hand, in any case.
      field("Code", {
        autocomplete: "one-time-code",
        autocapitalize: "characters",
        spellcheck: "false",
        required: true,
        minlength: 6,
        maxlength: 20,
        autofocus: true,
      }),
    ),
    actionButton("Use a passkey instead", { class: "secondary" }, passkeyMsg, async () => {
      const result = await client.loginMfaPasskey();
      if (result.status === "signed_in") go(next);
    }),
    passkeyMsg.el,
    h("p", { class: "links" }, h("a", { href: "/ui/login" }, "Start over")),
  );
}
