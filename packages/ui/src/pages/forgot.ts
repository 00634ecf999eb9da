import { client } from "../api.js";
import { field, fieldValue, form, h, render } from "../dom.js";

export function forgotPage(): void {
  const done = h("p", { role: "status", class: "status" });
  render(
    h("h1", {}, "Reset your password"),
    h("p", {}, "We will email you a link to choose a new password."),
    form(
      {
        label: "Reset your password",
        submit: "Send reset link",
        onsubmit: async (el) => {
          await client.forgotPassword(fieldValue(el, "Email").trim());
          // The server answers the same for unknown addresses; so does this page.
          done.textContent = "If an account uses that address, a reset link is on its way.";
        },
      },
      field("Email", { type: "email", autocomplete: "email", required: true, autofocus: true }),
    ),
    done,
    h("p", { class: "links" }, h("a", { href: "/ui/login" }, "Back to sign in")),
  );
}
