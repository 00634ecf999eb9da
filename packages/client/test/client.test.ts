import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { startTestApp, type TestApp } from "../../server/test/helpers.js";
import { ORIGIN, PASSWORD, STEP_MS, totpAt } from "../../server/test/mfa-helpers.js";
import { SoftAuthenticator } from "../../server/test/webauthn-authenticator.js";
import { LatchkeyClient, LatchkeyError, type Mode, type TokenStorage } from "../src/index.js";
import { CookieJar } from "./cookie-jar.js";
import { installWebAuthn } from "./webauthn-shim.js";

/** Past the 15-minute access-token lifetime, well inside the 7-day session. */
const ACCESS_EXPIRED_MS = 16 * 60_000;
const CONCURRENT = 20;

let app: TestApp | undefined;
const clients: LatchkeyClient[] = [];
afterEach(async () => {
  vi.unstubAllGlobals();
  for (const c of clients.splice(0)) c.close();
  await app?.close();
  app = undefined;
});

/** A counting transport: body mode with Node's own fetch, cookie mode through a browser-like jar. */
function transport(mode: Mode, origin: string) {
  if (mode === "cookie") return new CookieJar(origin);
  const calls: string[] = [];
  const counted: typeof fetch = (input, init) => {
    calls.push(new URL(input instanceof Request ? input.url : input).pathname);
    return fetch(input, init);
  };
  return { calls, fetch: counted };
}

async function start(mode: Mode) {
  // The server delivers exactly what the mode uses, so a client that leaned on the
  // other channel would fail here.
  app = await startTestApp({ tokens: { delivery: mode } });
  const baseUrl = await app.listen();
  return { app, baseUrl };
}

function client(
  baseUrl: string,
  mode: Mode,
  extra: Partial<ConstructorParameters<typeof LatchkeyClient>[0]> = {},
) {
  const t = transport(mode, "http://latchkey.test"); // the server's allowed origin (publicUrl)
  const c = new LatchkeyClient({
    mode,
    baseUrl,
    fetch: t.fetch,
    // Test files run in threads of one process, where BroadcastChannels meet.
    channelName: `test-${randomBytes(6).toString("hex")}`,
    ...extra,
  });
  clients.push(c);
  return { client: c, calls: t.calls };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const email = () => `sdk-${randomBytes(4).toString("hex")}@example.com`;

describe("body mode", () => {
  it("keeps the access token unlock answers with: no refresh after a screen lock", async () => {
    const { baseUrl } = await start("body");
    const { client: lk, calls } = client(baseUrl, "body");
    await lk.register({ email: email(), password: PASSWORD });
    await lk.lock();
    await lk.unlock({ password: PASSWORD });
    calls.length = 0;
    expect((await lk.fetch("/users/me")).status).toBe(200);
    expect(calls).toEqual(["/users/me"]);
  });
});

describe.each(["body", "cookie"] as const)("%s mode", (mode) => {
  it(`refreshes once for ${CONCURRENT} concurrent 401s and retries each request`, async () => {
    const { app, baseUrl } = await start(mode);
    const { client: lk, calls } = client(baseUrl, mode);
    const registered = await lk.register({ email: email(), password: PASSWORD });
    expect(registered.status).toBe("signed_in");
    app.clock.advance(ACCESS_EXPIRED_MS);
    calls.length = 0;

    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, () => lk.fetch("/users/me")),
    );

    expect(results.map((r) => r.status)).toEqual(Array(CONCURRENT).fill(200));
    for (const r of results)
      expect((await r.json()).email).toBe(
        registered.status === "signed_in" && registered.user.email,
      );
    expect(calls.filter((p) => p === "/auth/refresh")).toHaveLength(1);
    // Each request went out twice: once with the expired token, once after the refresh.
    expect(calls.filter((p) => p === "/users/me")).toHaveLength(2 * CONCURRENT);
    const [session] = await app.svc.store.sessions.listActive((await lk.me()).id, app.clock.now());
    expect(session?.generation).toBe(1); // one rotation on the server too
  });

  it("replays the request body on the retry", async () => {
    const { app, baseUrl } = await start(mode);
    const { client: lk, calls } = client(baseUrl, mode);
    await lk.register({ email: email(), password: PASSWORD });
    app.clock.advance(ACCESS_EXPIRED_MS);
    calls.length = 0;

    const user = await lk.updateProfile({ username: "renamed_user" });

    expect(user.username).toBe("renamed_user");
    expect(calls).toEqual(["/users/me", "/auth/refresh", "/users/me"]);
  });

  it("gives the 401 back and reports the end when the session is over", async () => {
    const { app, baseUrl } = await start(mode);
    const ended: string[] = [];
    const { client: lk, calls } = client(baseUrl, mode, { onSessionEnd: (r) => ended.push(r) });
    await lk.register({ email: email(), password: PASSWORD });
    app.clock.advance(8 * 86_400_000); // past the 7-day session
    calls.length = 0;

    const results = await Promise.all([lk.fetch("/users/me"), lk.fetch("/sessions")]);

    expect(results.map((r) => r.status)).toEqual([401, 401]);
    expect(calls.filter((p) => p === "/auth/refresh")).toHaveLength(1);
    expect(ended).toHaveLength(1);
    await expect(lk.me()).rejects.toMatchObject({ status: 401 });
    await lk.fetch("/sessions");
    expect(ended).toHaveLength(1); // reported once, however many 401s follow
  });

  it(`answers ${CONCURRENT} concurrent 401s of a screen-locked session with the refresh's 423, refreshing once`, async () => {
    const { app, baseUrl } = await start(mode);
    const ended: string[] = [];
    const { client: lk, calls } = client(baseUrl, mode, { onSessionEnd: (r) => ended.push(r) });
    await lk.register({ email: email(), password: PASSWORD });
    await lk.lock(); // the refresh now answers 423, an answer no refresh cures
    app.clock.advance(ACCESS_EXPIRED_MS);
    calls.length = 0;

    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, () => lk.fetch("/users/me")),
    );

    // They used to get the expired token's 401, and the app could not tell a lock from an end.
    expect(results.map((r) => r.status)).toEqual(Array(CONCURRENT).fill(423));
    for (const r of results) expect((await r.json()).code).toBe("screen_locked");
    // Each 401 that came back after the failed refresh used to start another one.
    expect(calls.filter((p) => p === "/auth/refresh")).toHaveLength(1);
    const err = await lk.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LatchkeyError);
    expect(err).toMatchObject({ status: 423, code: "screen_locked" });
    expect(ended).toEqual([]); // a lock does not end the session

    await lk.unlock({ password: PASSWORD });
    expect((await lk.me()).email).toMatch(/^sdk-/);
  });

  it("answers the 401s a refresh refused with 403 ip_not_allowed with that 403, keeping the session", async () => {
    const { app, baseUrl } = await start(mode);
    const ended: string[] = [];
    const { client: lk, calls } = client(baseUrl, mode, { onSessionEnd: (r) => ended.push(r) });
    await lk.register({ email: email(), password: PASSWORD });
    await lk.updateProfile({ allowedIps: ["192.0.2.1"] }); // locks this address out
    app.clock.advance(ACCESS_EXPIRED_MS);
    calls.length = 0;

    const results = await Promise.all([lk.fetch("/users/me"), lk.fetch("/sessions")]);

    // They used to get the expired token's 401 `token_expired`, which reads as "refresh".
    expect(results.map((r) => r.status)).toEqual([403, 403]);
    for (const r of results) expect((await r.json()).code).toBe("ip_not_allowed");
    expect(calls.filter((p) => p === "/auth/refresh")).toHaveLength(1);
    await expect(lk.me()).rejects.toMatchObject({ status: 403, code: "ip_not_allowed" });
    expect(ended).toEqual([]); // the session lives: the rule can be lifted from an allowed address
  });

  it("signs in with MFA, then logs out", async () => {
    const { app, baseUrl } = await start(mode);
    const { client: lk } = client(baseUrl, mode);
    const address = email();
    await lk.register({ email: address, password: PASSWORD });
    const { secret } = await lk.totpSetup();
    const backupCodes = await lk.totpEnable(totpAt(secret, app.clock.now()));
    expect(backupCodes).toHaveLength(10);
    await lk.logout();
    await expect(lk.me()).rejects.toMatchObject({ status: 401 });

    const pending = await lk.login({ identifier: address, password: PASSWORD });
    expect(pending.status).toBe("mfa_required");
    app.clock.advance(STEP_MS); // a TOTP code is accepted once
    await expect(lk.loginMfa("000000")).rejects.toMatchObject({ code: "invalid_code" });
    const signedIn = await lk.loginMfa(totpAt(secret, app.clock.now()));

    expect(signedIn.status).toBe("signed_in");
    expect((await lk.me()).mfaEnabled).toBe(true);
  });

  it("registers a passkey, signs in with it alone, renames it, steps up with it to delete it", async () => {
    const { baseUrl } = await start(mode);
    const { client: lk } = client(baseUrl, mode);
    installWebAuthn(new SoftAuthenticator({ origin: ORIGIN }));
    await lk.register({ email: email(), password: PASSWORD });
    const added = await lk.registerPasskey("Laptop");
    expect(added).toMatchObject({ name: "Laptop", lastUsedAt: null, deviceType: "singleDevice" });
    await lk.logout();

    const signedIn = await lk.loginWithPasskey(); // discoverable: no identifier
    expect(signedIn.status).toBe("signed_in");
    expect(await lk.renamePasskey(added.id, "Work laptop")).toMatchObject({ name: "Work laptop" });
    const [listed] = await lk.passkeys();
    expect(listed?.lastUsedAt).not.toBeNull();

    await expect(lk.deletePasskey(added.id)).rejects.toMatchObject({ code: "step_up_required" });
    await lk.stepUpWithPasskey();
    await lk.deletePasskey(added.id);
    expect(await lk.passkeys()).toEqual([]);
    await expect(lk.stepUpWithPasskey()).rejects.toMatchObject({ status: 409, code: "conflict" });
  });

  it("finishes an MFA sign-in with a passkey; one without user verification leaves MFA due", async () => {
    const { app, baseUrl } = await start(mode);
    const { client: lk } = client(baseUrl, mode);
    const address = email();
    await lk.register({ email: address, password: PASSWORD });
    const { secret } = await lk.totpSetup();
    await lk.totpEnable(totpAt(secret, app.clock.now()));
    installWebAuthn(new SoftAuthenticator({ origin: ORIGIN, userVerification: false }));
    await lk.registerPasskey();
    await lk.logout();

    expect(await lk.login({ identifier: address, password: PASSWORD })).toMatchObject({
      status: "mfa_required",
    });
    expect((await lk.loginMfaPasskey()).status).toBe("signed_in");
    await lk.logout();

    // Without UV the passkey is one factor: a code is still due.
    const pending = await lk.loginWithPasskey({ identifier: address });
    expect(pending.status).toBe("mfa_required");
    app.clock.advance(STEP_MS);
    expect((await lk.loginMfa(totpAt(secret, app.clock.now()))).status).toBe("signed_in");
  });

  it("starts a guest session", async () => {
    const { baseUrl } = await start(mode);
    const { client: lk } = client(baseUrl, mode);
    const result = await lk.guest({ username: "visitor" });
    expect(result).toMatchObject({ status: "signed_in", returningGuest: false });
    expect((await lk.me()).guest).toBe(true);
  });
});

describe("body mode", () => {
  it("throws LatchkeyError with the contract's code", async () => {
    const { baseUrl } = await start("body");
    const { client: lk } = client(baseUrl, "body");
    const err = await lk
      .login({ identifier: "nobody", password: "wrong password" })
      .catch((e) => e);
    expect(err).toBeInstanceOf(LatchkeyError);
    expect(err).toMatchObject({ status: 401, code: "invalid_credentials" });
  });

  it("adopts a pair another tab rotated into shared storage without refreshing again", async () => {
    const { app, baseUrl } = await start("body");
    let saved: ReturnType<TokenStorage["load"]> = null;
    const shared: TokenStorage = {
      shared: true,
      load: () => saved,
      save: (tokens) => {
        saved = tokens;
      },
    };
    const channelName = `shared-${randomBytes(6).toString("hex")}`;
    const a = client(baseUrl, "body", { storage: shared, channelName });
    const b = client(baseUrl, "body", { storage: shared, channelName });
    await a.client.register({ email: email(), password: PASSWORD });
    expect((await b.client.fetch("/users/me")).status).toBe(200);
    app.clock.advance(ACCESS_EXPIRED_MS);

    expect(await a.client.refresh()).toBe(true);
    const res = await b.client.fetch("/users/me");

    expect(res.status).toBe(200);
    expect(b.calls.filter((p) => p === "/auth/refresh")).toHaveLength(0);
  });

  it("sends a step-up token to routes that need one", async () => {
    const { app, baseUrl } = await start("body");
    const { client: lk } = client(baseUrl, "body");
    await lk.register({ email: email(), password: PASSWORD });
    const { secret } = await lk.totpSetup();
    await lk.totpEnable(totpAt(secret, app.clock.now()));
    await expect(lk.regenerateBackupCodes()).rejects.toMatchObject({ code: "step_up_required" });
    await lk.stepUp({ password: PASSWORD });
    expect(await lk.regenerateBackupCodes()).toHaveLength(10);
  });

  it("authenticates to an apiOrigins entry written as a URL with a trailing slash", async () => {
    const { baseUrl } = await start("body");
    const api = createServer((req, res) => res.end(req.headers.authorization ?? "none"));
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    const apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    try {
      const { client: lk } = client(baseUrl, "body", { apiOrigins: [`${apiUrl}/`] });
      await lk.register({ email: email(), password: PASSWORD });
      expect(await (await lk.fetch(`${apiUrl}/orders`)).text()).toMatch(/^Bearer ey/);
      expect(() => client(baseUrl, "body", { apiOrigins: ["api.example.com"] })).toThrow(TypeError);
    } finally {
      api.close();
    }
  });

  it("only sends the access token to trusted origins", async () => {
    const { baseUrl } = await start("body");
    const seen: Array<string | null> = [];
    const lk = new LatchkeyClient({
      mode: "body",
      baseUrl,
      channelName: `t-${randomBytes(6).toString("hex")}`,
      fetch: async (input, init) => {
        seen.push(new Headers(init?.headers).get("authorization"));
        return input.toString().startsWith(baseUrl) ? fetch(input, init) : new Response("{}");
      },
    });
    clients.push(lk);
    await lk.register({ email: email(), password: PASSWORD });
    seen.length = 0;
    await lk.fetch("https://elsewhere.example/api");
    await lk.fetch(`${baseUrl}/users/me`);
    expect(seen[0]).toBeNull();
    expect(seen[1]).toMatch(/^Bearer /);
  });
});

describe("session end and foreign 401s", () => {
  it("a logout while a refresh is in flight stays a logout: the refresh's successor is dropped", async () => {
    const { app, baseUrl } = await start("body");
    let stored: ReturnType<TokenStorage["load"]> = null;
    const ended: string[] = [];
    let releaseRefresh: (() => void) | undefined;
    const lk = new LatchkeyClient({
      mode: "body",
      baseUrl,
      channelName: `t-${randomBytes(6).toString("hex")}`,
      storage: {
        load: () => stored,
        save: (tokens) => {
          stored = tokens;
        },
      },
      onSessionEnd: (reason) => ended.push(reason),
      // The refresh's real answer is held back until the logout has finished.
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (new URL(String(input)).pathname === "/auth/refresh") {
          await new Promise<void>((resolve) => {
            releaseRefresh = resolve;
          });
        }
        return res;
      },
    });
    clients.push(lk);
    await lk.register({ email: email(), password: PASSWORD });
    app.clock.advance(ACCESS_EXPIRED_MS);
    const pending = lk.fetch("/users/me");
    while (!releaseRefresh) await new Promise((r) => setTimeout(r, 5));

    await lk.logout();
    releaseRefresh();

    expect((await pending).status).toBe(401);
    expect(stored).toBeNull(); // the rotated pair used to land back in storage
    expect((await lk.fetch("/users/me")).status).toBe(401);
    expect(ended).toEqual([]); // the user signed out: nothing ended behind their back
  });

  it("reports a session revoked elsewhere and forgets its tokens", async () => {
    const { app, baseUrl } = await start("body");
    const ended: string[] = [];
    const { client: lk, calls } = client(baseUrl, "body", { onSessionEnd: (r) => ended.push(r) });
    const address = email();
    await lk.register({ email: address, password: PASSWORD });
    const other = new LatchkeyClient({ mode: "body", baseUrl, channelName: "other-device" });
    clients.push(other);
    await other.login({ identifier: address, password: PASSWORD });
    await other.logoutAll(); // "log out of all devices" from another one
    app.clock.advance(2_000); // past the session cache
    calls.length = 0;

    const res = await lk.fetch("/users/me");

    expect(res.status).toBe(401);
    expect(ended).toEqual(["session_revoked"]);
    expect(calls).toEqual(["/users/me"]); // no refresh can cure it
    await lk.fetch("/sessions");
    expect(calls.at(-1)).toBe("/sessions");
    expect(calls).not.toContain("/auth/refresh");
  });

  it("never refreshes because another origin answered 401", async () => {
    const { baseUrl } = await start("body");
    const calls: string[] = [];
    const lk = new LatchkeyClient({
      mode: "body",
      baseUrl,
      channelName: `t-${randomBytes(6).toString("hex")}`,
      fetch: async (input, init) => {
        const url = new URL(input instanceof Request ? input.url : input);
        calls.push(`${url.host}${url.pathname}`);
        return url.host === "elsewhere.example"
          ? Response.json({ code: "invalid_token" }, { status: 401 })
          : fetch(input, init);
      },
    });
    clients.push(lk);
    await lk.register({ email: email(), password: PASSWORD });
    calls.length = 0;
    for (let i = 0; i < 3; i++) {
      expect((await lk.fetch("https://elsewhere.example/api")).status).toBe(401);
    }
    expect(calls).toEqual(Array(3).fill("elsewhere.example/api"));
  });
});

describe("cookie mode", () => {
  it("never holds the refresh token in JavaScript", async () => {
    const { baseUrl } = await start("cookie");
    const jar = new CookieJar("http://latchkey.test");
    const lk = new LatchkeyClient({
      mode: "cookie",
      baseUrl,
      fetch: jar.fetch,
      channelName: `c-${randomBytes(6).toString("hex")}`,
    });
    clients.push(lk);
    await lk.register({ email: email(), password: PASSWORD });
    expect(jar.has("lk_access") && jar.has("lk_refresh")).toBe(true);
    await lk.logout();
    expect(jar.has("lk_access") || jar.has("lk_refresh")).toBe(false);
  });

  it("a sign-in while a refresh is in flight keeps the new session: the refresh's cookies land first", async () => {
    const { baseUrl } = await start("cookie");
    const jar = new CookieJar("http://latchkey.test");
    let signInLanded = () => {};
    const landed = new Promise<void>((resolve) => {
      signInLanded = resolve;
    });
    const lk = new LatchkeyClient({
      mode: "cookie",
      baseUrl,
      channelName: `c-${randomBytes(6).toString("hex")}`,
      fetch: async (input, init) => {
        const res = await jar.fetch(input, init);
        if (new URL(String(input)).pathname === "/auth/login") signInLanded();
        return res;
      },
    });
    clients.push(lk);
    await lk.register({ email: email(), password: PASSWORD });
    const next = email();
    const registered = await fetch(`${baseUrl}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: next, password: PASSWORD }),
    });
    expect(registered.status).toBe(201);
    // The old session's rotated pair reaches the browser after the sign-in's (or 1.5 s on).
    jar.beforeStore = async (path) => {
      if (path === "/auth/refresh") await Promise.race([landed, sleep(1500)]);
    };

    const refreshing = lk.refresh();
    while (!jar.calls.includes("/auth/refresh")) await sleep(5);
    await lk.login({ identifier: next, password: PASSWORD });
    await refreshing;

    // The browser keeps the last Set-Cookie: the old session's, which the app never asked for.
    expect((await lk.me()).email).toBe(next);
  });

  it("is refused without an allowed Origin (the server's CSRF guard sees the page's origin)", async () => {
    const { baseUrl } = await start("cookie");
    const jar = new CookieJar("https://evil.example");
    const lk = new LatchkeyClient({
      mode: "cookie",
      baseUrl,
      fetch: jar.fetch,
      channelName: `c-${randomBytes(6).toString("hex")}`,
    });
    clients.push(lk);
    await lk.register({ email: email(), password: PASSWORD });
    await expect(lk.updateProfile({ username: "nope_nope" })).rejects.toMatchObject({
      code: "csrf_rejected",
    });
  });
});
