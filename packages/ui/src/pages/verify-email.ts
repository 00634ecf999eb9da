import { client } from "../api.js";
import { field, fieldValue, form, h, render, takeTokenFromUrl } from "../dom.js";

const resend = () =>
  form(
    {
      label: "Send a new verification link",
      submit: "Send a new link",
      onsubmit: async (el) => {
        await client.resendVerification(fieldValue(el, "Email").trim());
        el.replaceWith(
          h("p", { role: "status" }, "If that address needs verifying, a new link is on its way."),
        );
      },
    },
    field("Email", { type: "email", autocomplete: "email", required: true }),
  );

/** Confirmed by a click, like the sign-in link, so a mail scanner cannot spend it. */
export function verifyEmailPage(): void {
  const token = takeTokenFromUrl();
  if (!token) {
    render(
      h("h1", {}, "Verify your email"),
      h("p", {}, "Open the link from your email, or get a new one."),
      resend(),
    );
    return;
  }
  render(
    h("h1", {}, "Verify your email"),
    form({
      label: "Verify your email",
      submit: "Verify my email address",
      onsubmit: async () => {
        try {
          await client.verifyEmail(token);
        } catch {
          render(
            h("h1", {}, "Verify your email"),
            h("p", { role: "alert", class: "alert" }, "This link is invalid or has expired."),
            resend(),
          );
          return;
        }
        render(
          h("h1", {}, "Email verified"),
          h("p", { role: "status" }, "Thank you: your address is verified."),
          h("p", {}, h("a", { href: "/ui/account" }, "Go to your account")),
        );
      },
    }),
  );
}
