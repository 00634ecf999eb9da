import { client } from "../api.js";
import { field, fieldValue, form, h, render, takeTokenFromUrl } from "../dom.js";

export function resetPage(): void {
  const token = takeTokenFromUrl();
  if (!token) {
    render(
      h("h1", {}, "Choose a new password"),
      h("p", { role: "alert", class: "alert" }, "This page needs the link from your email."),
      h("p", {}, h("a", { href: "/ui/forgot-password" }, "Ask for a new link")),
    );
    return;
  }
  render(
    h("h1", {}, "Choose a new password"),
    form(
      {
        label: "Choose a new password",
        submit: "Change password",
        onsubmit: async (el) => {
          const password = fieldValue(el, "New password");
          if (password !== fieldValue(el, "Repeat the new password")) {
            throw new Error("The two passwords differ.");
          }
          await client.resetPassword(token, password);
          render(
            h("h1", {}, "Password changed"),
            h(
              "p",
              { role: "status" },
              "Every session was signed out. Sign in with the new password.",
            ),
            h("p", {}, h("a", { href: "/ui/login" }, "Sign in")),
          );
        },
      },
      field("New password", {
        type: "password",
        autocomplete: "new-password",
        required: true,
        minlength: 8,
        autofocus: true,
      }),
      field("Repeat the new password", {
        type: "password",
        autocomplete: "new-password",
        required: true,
        minlength: 8,
      }),
    ),
  );
}
