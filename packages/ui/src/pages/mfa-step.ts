import { client, go } from "../api.js";
import { field, fieldValue, form, h, render } from "../dom.js";

/** The second step of any sign-in that answered `mfa_required`. */
export function mfaStep(next = "/ui/account"): void {
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
      field("Code", {
        inputmode: "numeric",
        autocomplete: "one-time-code",
        required: true,
        minlength: 6,
        maxlength: 20,
        autofocus: true,
      }),
    ),
    h("p", { class: "links" }, h("a", { href: "/ui/login" }, "Start over")),
  );
}
