import { APP_ORIGIN, type Browser, type Page } from "./browser.js";

/** Follows the IdP's own redirects; stops where the app or an interaction page comes next. */
async function toNextStop(browser: Browser, url: URL): Promise<Page> {
  return browser.follow(
    url,
    (next) => next.origin !== APP_ORIGIN && !next.pathname.startsWith("/interaction/"),
  );
}

/**
 * The scripted user at the IdP: signs in as `account` when asked, then consents (or,
 * with `decline`, refuses). Returns the callback URL the IdP sends the browser to,
 * without following it, so a test can inspect or tamper with it first.
 */
export async function userAtIdp(
  browser: Browser,
  authUrl: URL,
  script: { account: string; decline?: boolean },
): Promise<URL> {
  let page = await toNextStop(browser, authUrl);
  for (let step = 0; step < 4; step++) {
    const next = page.location;
    if (!next) throw new Error(`the IdP stopped with ${page.status}: ${page.body}`);
    if (next.origin === APP_ORIGIN) return next;
    const { prompt } = (await browser.get(next)).json<{ prompt: string }>();
    const action = prompt === "login" ? "login" : script.decline ? "abort" : "confirm";
    const done = await browser.post(
      `${next.href}/${action}`,
      action === "login" ? { account: script.account } : {},
    );
    if (!done.location) throw new Error(`interaction ${action} failed: ${done.body}`);
    page = await toNextStop(browser, done.location);
  }
  throw new Error("the IdP kept asking");
}

/** GET /start on the app; the 302's target (the provider's authorization URL). */
export async function start(browser: Browser, provider: string, query = ""): Promise<URL> {
  const page = await browser.get(`${APP_ORIGIN}/auth/oauth/${provider}/start${query}`);
  if (page.status !== 302 || !page.location) {
    throw new Error(`start failed: ${page.status} ${page.body}`);
  }
  return page.location;
}
