import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../../server/test/helpers.js";
import { type MailServer, smtpConfig, startMailServer } from "../../server/test/mail-server.js";
import { enrolledUser, PASSWORD, STEP_MS, totpAt } from "../../server/test/mfa-helpers.js";
import { type Chromium, freePort, launchChromium, shot } from "./chromium.js";

const OTHER_DEVICE_UA =
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:130.0) Gecko/20100101 Firefox/130.0";

let app: TestApp;
let mail: MailServer;
let base: string;
let chrome: Chromium;

beforeAll(async () => {
  // The page origin must be the server's publicUrl, which the CSRF check allows.
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  mail = await startMailServer(); // a real SMTP server: the mailed links are followed below
  const smtp = smtpConfig(mail);
  app = await startTestApp({
    publicUrl: base,
    cookies: { secure: false },
    ...smtp,
    mail: { ...smtp.mail, perIp: 1000 },
  });
  await app.http.listen({ host: "127.0.0.1", port });
  chrome = await launchChromium();
});

afterAll(async () => {
  await chrome?.close();
  await app?.close();
  await mail?.close();
});

/** The newest mailed link to `page` for `address`, exactly as the mail has it. */
async function mailedLink(address: string, page: string): Promise<string> {
  await app.svc.mailer.flush();
  const pattern = new RegExp(`${base}/ui/${page}\\?token=[A-Za-z0-9_%-]+`);
  for (const message of mail.to(address).reverse()) {
    const link = pattern.exec(message.body)?.[0];
    if (link) return link;
  }
  throw new Error(`no ${page} link mailed to ${address}`);
}

/**
 * The browser's clock moved on by `ms` as far as cookies go: those whose Max-Age runs
 * out by then are gone (the server's clock is moved by app.clock; Chromium's is real).
 */
async function ageCookies(page: Page, ms: number): Promise<void> {
  const until = (Date.now() + ms) / 1000;
  for (const c of await page.context().cookies()) {
    if (c.expires !== -1 && c.expires < until) await page.context().clearCookies({ name: c.name });
  }
}

const newPage = (userAgent?: string): Promise<Page> =>
  chrome.newPage(userAgent ? { userAgent } : {});

async function signIn(page: Page, email: string, secret: string): Promise<void> {
  await page.goto(`${base}/ui/login`);
  await page.getByLabel("Email or username").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
  app.clock.advance(STEP_MS); // each TOTP code is accepted once
  await page.getByLabel("Code", { exact: true }).fill(totpAt(secret, app.clock.now()));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.waitForURL("**/ui/account");
  await page.getByRole("heading", { name: "Your account" }).waitFor();
}

describe("hosted pages in Chromium", () => {
  it("register, MFA setup, sign out, sign in with TOTP, sign another session out", async () => {
    const email = `browser-${Date.now()}@example.com`;
    const page = await newPage();

    // Register: lands on the account page, signed in by cookie.
    await page.goto(`${base}/ui/register`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL("**/ui/account");
    await page
      .getByText(email.split("@")[0] ?? email)
      .first()
      .waitFor({ state: "attached" });
    await shot(page, "01-account-after-register");
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === "lk_refresh")?.httpOnly).toBe(true);
    expect(await page.evaluate(() => document.cookie)).toBe(""); // nothing readable by scripts

    // MFA: read the key shown for manual entry, answer with the code an app would show.
    await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
    const secret = (await page.getByTestId("totp-secret").textContent()) ?? "";
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    expect(await page.getByRole("img", { name: /QR code/ }).getAttribute("src")).toMatch(
      /^data:image\/png;base64,/,
    );
    await shot(page, "02-mfa-setup");
    await page.getByLabel("Code from the app").fill(totpAt(secret, app.clock.now()));
    await page.getByRole("button", { name: "Turn on two-factor" }).click();
    const codes = page.getByRole("list", { name: "Backup codes" }).getByRole("listitem");
    await codes.first().waitFor();
    expect(await codes.count()).toBe(10);
    await shot(page, "03-backup-codes");

    // Sign out, then back in: password, then a TOTP code.
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForURL("**/ui/login");
    expect((await page.context().cookies()).map((c) => c.name)).not.toContain("lk_refresh");
    await page.getByLabel("Email or username").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
    await shot(page, "04-mfa-step");
    app.clock.advance(STEP_MS);
    await page.getByLabel("Code", { exact: true }).fill(totpAt(secret, app.clock.now()));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByText("Two-factor authentication is").waitFor();

    // A second device signs in; this one signs it out from the sessions list.
    const other = await newPage(OTHER_DEVICE_UA);
    await signIn(other, email, secret);
    await page.reload();
    const revoke = page.getByRole("button", { name: /^Sign out Firefox/ });
    await revoke.waitFor();
    expect(await page.locator("tbody tr").count()).toBe(2);
    await shot(page, "05-sessions-before-revoke");
    await revoke.click();
    await page
      .getByRole("status")
      .filter({ hasText: /Signed out Firefox/ })
      .waitFor();
    expect(await page.locator("tbody tr").count()).toBe(1);
    await shot(page, "06-sessions-after-revoke");

    // The other device is out: its next page load goes to the sign-in page.
    await other.reload();
    await other.waitForURL("**/ui/login");
    await shot(other, "07-other-device-signed-out");

    expect(chrome.problems).toEqual([]);
  });

  it("account page: profile, allowed IPs, API token shown once, step-up for backup codes, password change", async () => {
    const email = `account-${Date.now()}@example.com`;
    const page = await newPage();
    await page.goto(`${base}/ui/register`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL("**/ui/account");

    await page.getByLabel("Username").fill("pat_browser");
    await page.getByRole("button", { name: "Save profile" }).click();
    await page.getByText("Profile saved.").waitFor();
    await page.getByLabel("Allowed IP addresses").fill("127.0.0.1\n10.0.0.0/8");
    await page.getByRole("button", { name: "Save rules" }).click();
    await page.getByText("Rules saved.").waitFor();
    const me = await page.evaluate(async () => (await fetch("/users/me")).json());
    expect(me).toMatchObject({ username: "pat_browser", allowedIps: ["127.0.0.1", "10.0.0.0/8"] });

    await page.getByLabel("Token name").fill("ci");
    await page.getByLabel("List sessions").check();
    await page.getByRole("button", { name: "Create token" }).click();
    const secret = (await page.getByTestId("api-token-secret").textContent()) ?? "";
    expect(secret).toMatch(/^lk_/);
    const listed = await page.evaluate(
      async (token) =>
        (await fetch("/sessions", { headers: { authorization: `Bearer ${token}` } })).status,
      secret,
    );
    expect(listed).toBe(200); // the token shown works, with its scope
    await page.getByRole("button", { name: "Delete API token ci" }).waitFor();

    // This suite's pages are on 127.0.0.1, so the RP ID is an IP address: browsers refuse it.
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.getByText("Passkeys cannot be used at this address.").waitFor();

    await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
    const key = (await page.getByTestId("totp-secret").textContent()) ?? "";
    await page.getByLabel("Code from the app").fill(totpAt(key, app.clock.now()));
    await page.getByRole("button", { name: "Turn on two-factor" }).click();
    const first = await page.getByRole("list", { name: "Backup codes" }).textContent();
    await page.getByRole("button", { name: "I saved them" }).click();
    await page.getByRole("button", { name: "Get new backup codes" }).click();
    // Step-up: the page asks for the password, then finishes what was asked.
    await page.getByLabel("Password or authenticator code").fill(PASSWORD);
    // Without a passkey the prompt does not offer one.
    expect(await page.getByRole("button", { name: "Use a passkey" }).count()).toBe(0);
    await page.getByRole("button", { name: "Confirm" }).click();
    await page.getByText("New backup codes: the old ones no longer work.").waitFor();
    const second = await page.getByRole("list", { name: "Backup codes" }).textContent();
    expect(second).not.toBe(first);
    await shot(page, "09-account-features");

    // The password changes here (ASVS 2.1.5), given the current one, which also steps up.
    const newPassword = "another long passphrase";
    await page.getByLabel("Current password").fill(PASSWORD);
    await page.getByLabel("New password", { exact: true }).fill(newPassword);
    await page.getByLabel("Repeat the new password").fill(newPassword);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByText("Password changed.").waitFor();
    const login = (password: string) =>
      app.http.inject({
        method: "POST",
        url: "/auth/login",
        payload: { identifier: email, password },
      });
    expect((await login(PASSWORD)).statusCode).toBe(401);
    expect((await login(newPassword)).json()).toMatchObject({ mfaRequired: true });
    await page.reload(); // this session goes on
    await page.getByRole("heading", { name: "Your account" }).waitFor();
    expect(chrome.problems).toEqual([]);
  });

  it("two tabs whose access token expired refresh once between them", async () => {
    const first = await newPage();
    await first.goto(`${base}/ui/guest`);
    await first.getByLabel("Display name").fill("tabs");
    await first.getByRole("button", { name: "Continue" }).click();
    await first.waitForURL("**/ui/account");
    const second = await first.context().newPage(); // same browser profile: shared cookies
    await second.goto(`${base}/ui/account`);
    await second.getByText("This device").waitFor();
    app.clock.advance(16 * 60_000); // the server's clock: both tabs' access cookie is stale

    const refreshes: string[] = [];
    const stale = new Set<Page>();
    // The refresh waits until both tabs have met the stale token: else, on a slow host, the
    // first tab's refresh can land before the second tab asks, which then never goes stale.
    let bothStale: () => void = () => {};
    const bothStaleSeen = new Promise<void>((resolve) => {
      bothStale = resolve;
    });
    await first.context().route("**/auth/refresh", async (route) => {
      await bothStaleSeen;
      await route.continue();
    });
    for (const tab of [first, second]) {
      tab.on("request", (r) => {
        if (new URL(r.url()).pathname === "/auth/refresh") refreshes.push(r.url());
      });
      tab.on("response", (r) => {
        if (r.status() !== 401) return;
        stale.add(tab);
        if (stale.size === 2) bothStale();
      });
    }
    await Promise.all([first.reload(), second.reload()]);
    await Promise.all([first, second].map((tab) => tab.getByText("This device").waitFor()));

    expect(stale.size).toBe(2); // both tabs met the stale token...
    expect(refreshes).toHaveLength(1); // ...and one refresh served both
  });

  it("mailed links: verify the email, reset the password, sign in by magic link", async () => {
    const email = `mailed-${Date.now()}@example.com`;
    const page = await newPage();
    await page.goto(`${base}/ui/register`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByText("not verified").waitFor();

    await page.goto(await mailedLink(email, "verify-email"));
    expect(page.url()).toBe(`${base}/ui/verify-email`); // the token left the address bar
    await page.getByRole("button", { name: "Verify my email address" }).click();
    await page.getByRole("heading", { name: "Email verified" }).waitFor();

    await page.goto(`${base}/ui/forgot-password`);
    await page.getByLabel("Email").fill(email);
    await page.getByRole("button", { name: "Send reset link" }).click();
    await page.getByText("a reset link is on its way").waitFor();
    await page.goto(await mailedLink(email, "reset-password"));
    const newPassword = "a brand new passphrase";
    await page.getByLabel("New password", { exact: true }).fill(newPassword);
    await page.getByLabel("Repeat the new password").fill(newPassword);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByRole("heading", { name: "Password changed" }).waitFor();
    await page.goto(`${base}/ui/account`); // the reset ended every session
    await page.waitForURL("**/ui/login");
    await page.getByLabel("Email or username").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(newPassword);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL("**/ui/account");
    await page.getByText("verified", { exact: true }).waitFor();

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForURL("**/ui/login");
    await page.getByLabel("Email or username").fill(email);
    await page.getByRole("button", { name: "Email me a sign-in link instead" }).click();
    await page.getByText("a sign-in link is on its way").waitFor();
    await page.goto(await mailedLink(email, "magic-link"));
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByRole("heading", { name: "Your account" }).waitFor();
    await shot(page, "10-signed-in-by-magic-link");
    expect(chrome.problems).toEqual([]);
  });

  it("/ui/, where a provider sign-in lands: MFA pending finishes there, errors show as text, a session goes on", async () => {
    const user = await enrolledUser(app);
    const page = await newPage();
    let dialogs = 0;
    page.on("dialog", (dialog) => {
      dialogs++;
      void dialog.dismiss();
    });
    // The callback's answer for an MFA user: the lk_mfa cookie and a 302 to /ui/?mfaRequired=true.
    const pending = await page.request.post(`${base}/auth/login`, {
      data: { identifier: user.email, password: PASSWORD },
    });
    expect(await pending.json()).toMatchObject({ mfaRequired: true });
    await page.goto(`${base}/ui/?mfaRequired=true`);
    await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
    expect(new URL(page.url()).search).toBe("");
    app.clock.advance(STEP_MS);
    await page.getByLabel("Code", { exact: true }).fill(totpAt(user.secret, app.clock.now()));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL("**/ui/account");

    // Signed in, /ui/ (the callback's default target) is the account page.
    await page.goto(`${base}/ui/`);
    await page.waitForURL("**/ui/account");
    await page.getByRole("heading", { name: "Your account" }).waitFor();

    // ?error= is the contract's code, or whatever a crafted link says: text, never markup.
    const signedOut = await newPage();
    signedOut.on("dialog", (dialog) => {
      dialogs++;
      void dialog.dismiss();
    });
    await signedOut.goto(`${base}/ui/?error=oauth_denied`);
    await signedOut.getByRole("alert").filter({ hasText: "cancelled at the provider" }).waitFor();
    expect(new URL(signedOut.url()).search).toBe("");
    const crafted = "<img src=x onerror=alert(1)>";
    await signedOut.goto(`${base}/ui/login?error=${encodeURIComponent(crafted)}`);
    await signedOut.getByRole("alert").filter({ hasText: "did not work" }).waitFor();
    expect(await signedOut.locator("main img").count()).toBe(0);
    expect(await signedOut.locator("main").textContent()).not.toContain(crafted);
    // Signed out, /ui/ is the sign-in page.
    await signedOut.goto(`${base}/ui/`);
    await signedOut.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(dialogs).toBe(0);
    expect(chrome.problems).toEqual([]);
  });

  it("MFA by backup code; locked sessions unlock (token expired) or sign out (page open)", async () => {
    const user = await enrolledUser(app);
    const page = await newPage();
    await page.goto(`${base}/ui/login`);
    await page.getByLabel("Email or username").fill(user.email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    const code = page.getByLabel("Code", { exact: true });
    await code.waitFor();
    // A numeric keypad would hide the letters of a backup code.
    expect(await code.getAttribute("inputmode")).toBeNull();
    const backup = user.backupCodes[0] ?? "";
    await code.fill(`${backup.slice(0, 4)}-${backup.slice(4)}`.toLowerCase()); // as typed off paper
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByRole("heading", { name: "Your account" }).waitFor();

    // Locked, then left alone past the access token's 15 minutes (refresh answers 423).
    const lock = () =>
      page.evaluate(async () => (await fetch("/sessions/lock", { method: "POST" })).status);
    expect(await lock()).toBe(204);
    app.clock.advance(40 * 60_000);
    await ageCookies(page, 40 * 60_000);
    await page.goto(`${base}/ui/`);
    await page.waitForURL("**/ui/account");
    await page.getByRole("heading", { name: "Session locked" }).waitFor();
    await shot(page, "11-session-locked");
    app.clock.advance(STEP_MS);
    await page
      .getByLabel("Password or authenticator code")
      .fill(totpAt(user.secret, app.clock.now()));
    await page.getByRole("button", { name: "Unlock" }).click();
    await page.getByRole("heading", { name: "Your account" }).waitFor();
    await page.getByText("This device", { exact: true }).waitFor();

    // Locked with the page open: the next action brings the lock screen, where whoever
    // cannot unlock signs out.
    expect(await lock()).toBe(204);
    await page.getByRole("button", { name: "Save rules" }).click();
    await page.getByRole("heading", { name: "Session locked" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL("**/ui/login");
    expect((await page.context().cookies()).map((c) => c.name)).not.toContain("lk_refresh");
    expect(chrome.problems).toEqual([]);
  });

  it("lets a guest in and shows a 404 page for unknown paths", async () => {
    const page = await newPage();
    await page.goto(`${base}/ui/guest`);
    await page.getByLabel("Display name").fill("visitor");
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByText("(guest)").waitFor();
    expect(await page.getByRole("heading", { name: "Two-factor authentication" }).count()).toBe(0);
    expect(await page.getByRole("heading", { name: "Passkeys" }).count()).toBe(0);
    await shot(page, "08-guest-account");
    expect(chrome.problems).toEqual([]);
    const missing = await page.goto(`${base}/ui/no/such/page`);
    expect(missing?.status()).toBe(404);
  });
});
