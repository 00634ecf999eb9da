import type { CDPSession, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../../server/test/helpers.js";
import { PASSWORD, totpAt } from "../../server/test/mfa-helpers.js";
import { type Chromium, freePort, launchChromium, shot } from "./chromium.js";

let app: TestApp;
let base: string;
let chrome: Chromium;

beforeAll(async () => {
  // WebAuthn refuses IP addresses as RP IDs: the pages must be on http://localhost (a
  // potentially trustworthy origin), which makes the RP ID `localhost`.
  const port = await freePort();
  base = `http://localhost:${port}`;
  app = await startTestApp({ publicUrl: base, cookies: { secure: false } });
  await app.http.listen({ host: "127.0.0.1", port });
  // The server listens on IPv4 only; where localhost also resolves to ::1, this keeps
  // Chromium from trying that first.
  chrome = await launchChromium(["--host-resolver-rules=MAP localhost 127.0.0.1"]);
});

afterAll(async () => {
  await chrome?.close();
  await app?.close();
});

interface Device {
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

/**
 * A browser profile with a platform authenticator that holds discoverable credentials,
 * verifies the user and needs no touch (the DevTools Protocol's virtual authenticator).
 */
async function device(): Promise<Device> {
  const page = await chrome.newPage();
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { page, cdp, authenticatorId };
}

async function credentials({ cdp, authenticatorId }: Device) {
  return (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
}

async function register(page: Page, email: string): Promise<void> {
  await page.goto(`${base}/ui/register`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL("**/ui/account");
}

async function addPasskey(page: Page, name: string): Promise<void> {
  await page.getByLabel("Passkey name").fill(name);
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page
    .getByRole("status")
    .filter({ hasText: `Added passkey ${name}.` })
    .waitFor();
}

async function signOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out", exact: true }).click();
  await page.waitForURL("**/ui/login");
}

const passkeyList = (page: Page) => page.getByRole("list", { name: "Your passkeys" });

describe("passkeys in Chromium (virtual authenticator)", () => {
  it("add a passkey, sign in with it alone, rename it, step up with it to delete it", async () => {
    const email = `passkey-${Date.now()}@example.com`;
    const laptop = await device();
    const { page } = laptop;
    await register(page, email);
    await passkeyList(page).getByText("No passkeys yet.").waitFor();

    await addPasskey(page, "Laptop");
    const held = await credentials(laptop);
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({ isResidentCredential: true, rpId: "localhost" });
    const listed = passkeyList(page).getByRole("listitem");
    expect(await listed.count()).toBe(1);
    expect(await listed.textContent()).toMatch(/^Laptop · added .+ · last used never/);
    // The server lists it under the authenticator's credential ID.
    const ids = await page.evaluate(async () =>
      (
        (await (await fetch("/webauthn/credentials")).json()) as { credentials: { id: string }[] }
      ).credentials.map((c) => c.id),
    );
    expect(ids).toEqual([Buffer.from(held[0]?.credentialId ?? "", "base64").toString("base64url")]);

    // The authenticator already holds one for this account (excludeCredentials).
    await page.getByRole("button", { name: "Add a passkey" }).click();
    await page.getByText("This device already holds a passkey for this account.").waitFor();
    await shot(page, "20-passkey-added");

    // Signed out, then back in with the passkey alone: no identifier, no password.
    await signOut(page);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByRole("heading", { name: "Your account" }).waitFor();
    await passkeyList(page).getByText("Laptop").waitFor();
    expect(await passkeyList(page).textContent()).not.toMatch(/last used never/);
    expect((await credentials(laptop))[0]?.signCount).toBeGreaterThan(0);

    await page.getByRole("button", { name: "Rename passkey Laptop" }).click();
    await page.getByLabel("New name").fill("Work laptop");
    await page.getByRole("button", { name: "Save name" }).click();
    await page.getByText("Renamed the passkey to Work laptop.").waitFor();

    // Deleting needs a step-up; the prompt offers the passkey, which confirms it.
    await page.getByRole("button", { name: "Delete passkey Work laptop" }).click();
    await page.getByLabel("Password or authenticator code").waitFor();
    await shot(page, "21-step-up-with-passkey");
    await page.getByRole("button", { name: "Use a passkey" }).click();
    await page.getByText("Deleted passkey Work laptop.").waitFor();
    await passkeyList(page).getByText("No passkeys yet.").waitFor();
    expect(await page.getByLabel("Password or authenticator code").count()).toBe(0);
    expect(chrome.problems).toEqual([]);
  });

  it("an MFA account: the passkey stands in for the code, and alone (it verifies the user)", async () => {
    const email = `passkey-mfa-${Date.now()}@example.com`;
    const phone = await device();
    const { page } = phone;
    await register(page, email);
    await page.getByRole("button", { name: "Set up two-factor authentication" }).click();
    const secret = (await page.getByTestId("totp-secret").textContent()) ?? "";
    await page.getByLabel("Code from the app").fill(totpAt(secret, app.clock.now()));
    await page.getByRole("button", { name: "Turn on two-factor" }).click();
    await page.getByRole("button", { name: "I saved them" }).click();
    await addPasskey(page, "Phone");

    // Password first, then the passkey instead of a TOTP code.
    await signOut(page);
    await page.getByLabel("Email or username").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "Two-factor authentication" }).waitFor();
    await shot(page, "22-mfa-step-with-passkey");
    await page.getByRole("button", { name: "Use a passkey instead" }).click();
    await page.waitForURL("**/ui/account");
    await page.getByText("Two-factor authentication is").waitFor();

    // A user-verifying passkey is two factors by itself: no MFA step.
    await signOut(page);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await page.waitForURL("**/ui/account");
    await passkeyList(page).getByText("Phone").waitFor();
    expect(chrome.problems).toEqual([]);
  });

  it("a passkey request the browser refuses says so", async () => {
    const { page } = await device();
    // This authenticator holds no passkey for the site, so the browser answers NotAllowedError.
    await page.goto(`${base}/ui/login`);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await page.getByText("The passkey request was cancelled or timed out.").waitFor();
    expect(page.url()).toBe(`${base}/ui/login`);
    expect(chrome.problems).toEqual([]);
  });
});
