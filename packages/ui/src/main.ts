import { h, render } from "./dom.js";
import { accountPage } from "./pages/account.js";
import { forgotPage } from "./pages/forgot.js";
import { guestPage } from "./pages/guest.js";
import { landingPage, loginPage } from "./pages/login.js";
import { magicLinkPage } from "./pages/magic-link.js";
import { registerPage } from "./pages/register.js";
import { resetPage } from "./pages/reset.js";
import { verifyEmailPage } from "./pages/verify-email.js";

/** Page paths under /ui; the server's mails link to reset-password, magic-link and verify-email. */
const PAGES: Record<string, () => void | Promise<void>> = {
  "": landingPage,
  login: loginPage,
  register: registerPage,
  "forgot-password": forgotPage,
  "reset-password": resetPage,
  "magic-link": magicLinkPage,
  "verify-email": verifyEmailPage,
  guest: guestPage,
  account: accountPage,
};

const name = location.pathname.replace(/^\/ui\/?/, "").replace(/\/+$/, "");
const page = PAGES[name];
if (page) void page();
else
  render(h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "/ui/login" }, "Go to sign in")));
