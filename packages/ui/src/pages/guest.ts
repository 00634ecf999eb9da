import { client, go } from "../api.js";
import { field, fieldValue, form, h, render } from "../dom.js";

export function guestPage(): void {
  render(
    h("h1", {}, "Continue as a guest"),
    h("p", {}, "A guest session lasts 50 hours. Give an email to come back to it later."),
    form(
      {
        label: "Continue as a guest",
        submit: "Continue",
        onsubmit: async (el) => {
          const email = fieldValue(el, "Email (optional)").trim();
          await client.guest({
            username: fieldValue(el, "Display name").trim(),
            ...(email ? { email } : {}),
          });
          go("/ui/account");
        },
      },
      field(
        "Display name",
        {
          required: true,
          minlength: 2,
          maxlength: 50,
          autofocus: true,
          pattern: "[A-Za-z0-9._\\-]+",
        },
        "2-50 letters, digits, ., _ or -",
      ),
      field("Email (optional)", { type: "email", autocomplete: "email" }),
    ),
    h("p", { class: "links" }, h("a", { href: "/ui/login" }, "Sign in instead")),
  );
}
