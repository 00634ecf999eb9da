import { client, go } from "../api.js";
import { field, fieldValue, form, h, render } from "../dom.js";

export function registerPage(): void {
  render(
    h("h1", {}, "Create an account"),
    form(
      {
        label: "Create an account",
        submit: "Create account",
        onsubmit: async (el) => {
          const username = fieldValue(el, "Username (optional)").trim();
          const result = await client.register({
            email: fieldValue(el, "Email").trim(),
            password: fieldValue(el, "Password"),
            ...(username ? { username } : {}),
          });
          if (result.status === "signed_in") return go("/ui/account");
          render(
            h("h1", {}, "Check your email"),
            h("p", {}, "We sent a link to verify your address. Open it, then sign in."),
            h("p", {}, h("a", { href: "/ui/login" }, "Sign in")),
          );
        },
      },
      field("Email", { type: "email", autocomplete: "email", required: true, autofocus: true }),
      field(
        "Username (optional)",
        { autocomplete: "nickname", minlength: 2, maxlength: 50, pattern: "[A-Za-z0-9._\\-]+" },
        "2-50 letters, digits, ., _ or -",
      ),
      field(
        "Password",
        { type: "password", autocomplete: "new-password", required: true, minlength: 8 },
        "At least 8 characters; a passphrase of a few words is best.",
      ),
    ),
    h("p", { class: "links" }, h("a", { href: "/ui/login" }, "I already have an account")),
  );
}
