import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  holdPasswordChecks,
  json,
  openAppDb,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";

const PASSWORD = "correct horse battery";
let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

const patch = (token: string, body: unknown, remoteAddress?: string) =>
  app.http.inject({
    method: "PATCH",
    url: "/users/me",
    headers: { ...bearer(token), "content-type": "application/json" },
    payload: JSON.stringify(body),
    ...(remoteAddress ? { remoteAddress } : {}),
  });
const me = (token: string, remoteAddress?: string) =>
  app.http.inject({
    url: "/users/me",
    headers: bearer(token),
    ...(remoteAddress ? { remoteAddress } : {}),
  });
const login = (identifier: string, remoteAddress?: string) =>
  app.http.inject({
    method: "POST",
    url: "/auth/login",
    ...json({ identifier, password: PASSWORD }),
    ...(remoteAddress ? { remoteAddress } : {}),
  });

describe("PATCH /users/me", () => {
  it("changes the username, answers the profile and a reissued access token", async () => {
    const { accessToken } = await registerUser(app, { username: "before" });
    const res = await patch(accessToken, { username: "after_1" });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ user: { username: string }; accessToken: string }>();
    expect(body.user.username).toBe("after_1");
    expect(decodeJwt(body.accessToken).username).toBe("after_1");
    // The old token's cached session sees the change at once on this node.
    expect((await me(accessToken)).json()).toMatchObject({ username: "after_1" });
    expect((await login("AFTER_1")).statusCode).toBe(200);
  });

  it("refuses a username or email another account holds (409 conflict)", async () => {
    await registerUser(app, { username: "taken", email: "taken@example.com" });
    const { accessToken } = await registerUser(app);
    expect((await patch(accessToken, { username: "TAKEN" })).json()).toMatchObject({
      code: "conflict",
    });
    expect((await patch(accessToken, { email: "Taken@Example.com" })).statusCode).toBe(409);
  });

  it("a new email is stored case-folded and unverified", async () => {
    const { accessToken } = await registerUser(app);
    const res = await patch(accessToken, { email: "New.Address@Example.com" });
    expect(res.json()).toMatchObject({
      user: { email: "new.address@example.com", emailVerified: false },
    });
  });

  it("rejects unknown fields, an empty change and bad values with validation_failed", async () => {
    const { accessToken } = await registerUser(app);
    for (const body of [
      {},
      { role: "admin" },
      { username: "x" },
      { screenLockMinutes: 0 },
      { sessionDurationMinutes: "60" },
      { allowedIps: ["300.1.1.1"] },
    ]) {
      const res = await patch(accessToken, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ code: "validation_failed" });
    }
  });

  it("refuses a guest's username or email change (the upgrade does that), allows singleSession", async () => {
    const guest = await app.http.inject({
      method: "POST",
      url: "/auth/guest",
      ...json({ username: "visitor" }),
    });
    const { accessToken } = guest.json<{ accessToken: string }>();
    expect((await patch(accessToken, { username: "visitor2" })).json()).toMatchObject({
      code: "forbidden",
    });
    expect((await patch(accessToken, { email: "v@example.com" })).statusCode).toBe(403);
    expect((await patch(accessToken, { singleSession: true })).statusCode).toBe(200);
  });

  it("sessionDurationMinutes sets the lifetime of new sessions; null restores the default", async () => {
    const { accessToken } = await registerUser(app, { email: "dur@example.com" });
    await patch(accessToken, { sessionDurationMinutes: 60 });
    expect((await login("dur@example.com")).json()).toMatchObject({ sessionExpiresIn: 3600 });
    await patch(accessToken, { sessionDurationMinutes: null });
    expect((await login("dur@example.com")).json()).toMatchObject({ sessionExpiresIn: 7 * 86400 });
  });

  it("sessionDurationMinutes is held to the server's ceiling, the rememberMe lifetime by default", async () => {
    const { accessToken } = await registerUser(app, { email: "ceiling@example.com" });
    const tooLong = await patch(accessToken, { sessionDurationMinutes: 90 * 1440 + 1 });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json()).toMatchObject({
      code: "validation_failed",
      detail: expect.stringContaining("sessionDurationMinutes must be at most 129600"),
      errors: [{ path: "sessionDurationMinutes", message: expect.stringContaining("129600") }],
    });
    expect((await patch(accessToken, { sessionDurationMinutes: 90 * 1440 })).statusCode).toBe(200);
    expect((await login("ceiling@example.com")).json()).toMatchObject({
      sessionExpiresIn: 90 * 86_400,
    });
  });

  it("sessionDurationMinutes: a configured ceiling refuses more and keeps shorter values working", async () => {
    await app.close();
    app = await startTestApp({ tokens: { maxSessionDurationSeconds: 86_400 } });
    const { accessToken } = await registerUser(app, { email: "day@example.com" });
    expect((await patch(accessToken, { sessionDurationMinutes: 1441 })).json()).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "sessionDurationMinutes" }],
    });
    expect((await patch(accessToken, { sessionDurationMinutes: 1440 })).statusCode).toBe(200);
    expect((await login("day@example.com")).json()).toMatchObject({ sessionExpiresIn: 86_400 });
    expect((await patch(accessToken, { sessionDurationMinutes: 5 })).statusCode).toBe(200);
    expect((await login("day@example.com")).json()).toMatchObject({ sessionExpiresIn: 300 });
  });

  it("sessionDurationMinutes stored above a ceiling lowered since is cut to it at sign-in", async () => {
    const { user } = await registerUser(app, { email: "lowered@example.com" });
    const db = await openAppDb(app);
    try {
      await db.kysely
        .updateTable("users")
        .set({ session_duration_minutes: 525_600 })
        .where("id", "=", user.id)
        .execute();
    } finally {
      await db.close();
    }
    const res = await login("lowered@example.com");
    expect(res.json()).toMatchObject({ sessionExpiresIn: 90 * 86_400 });
    // The session really ends there: a refresh a second later is refused.
    app.clock.advance(90 * 86_400_000);
    const refreshed = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: res.json<{ refreshToken: string }>().refreshToken }),
    });
    expect(refreshed.json()).toMatchObject({ code: "token_expired" });
  });

  it("singleSession: a new sign-in ends every other session", async () => {
    const first = await registerUser(app, { email: "single@example.com" });
    const second = (await login("single@example.com")).json<{ accessToken: string }>();
    await patch(first.accessToken, { singleSession: true });
    const third = (await login("single@example.com")).json<{ accessToken: string }>();
    expect((await me(first.accessToken)).json()).toMatchObject({ code: "session_revoked" });
    expect((await me(second.accessToken)).statusCode).toBe(401);
    expect((await me(third.accessToken)).statusCode).toBe(200);
  });

  it("singleSession: a sign-in applies the setting saved while it checked the password", async () => {
    const first = await registerUser(app, { email: "midway@example.com" });
    const held = holdPasswordChecks(app);
    try {
      const signIn = login("midway@example.com");
      await held.checking;
      expect((await patch(first.accessToken, { singleSession: true })).statusCode).toBe(200);
      held.release();
      expect((await signIn).statusCode).toBe(200);
    } finally {
      held.restore();
    }
    expect((await me(first.accessToken)).json()).toMatchObject({ code: "session_revoked" });
  });

  it("singleSession: of sign-ins at the same moment the newest stands, never none", async () => {
    const { accessToken } = await registerUser(app, { email: "burst@example.com" });
    await patch(accessToken, { singleSession: true });
    const tokens = (await Promise.all([1, 2, 3, 4, 5].map(() => login("burst@example.com")))).map(
      (res) => res.json<{ accessToken: string }>().accessToken,
    );
    const live = [];
    for (const token of tokens) if ((await me(token)).statusCode === 200) live.push(token);
    expect(live).toHaveLength(1);
  });
});

describe("allowedIps", () => {
  it("refuses requests and sign-ins from outside the list with 403 ip_not_allowed", async () => {
    const { accessToken } = await registerUser(app, { email: "ips@example.com" });
    const res = await patch(accessToken, { allowedIps: ["127.0.0.1", "10.0.0.0/8"] });
    expect(res.json()).toMatchObject({ user: { allowedIps: ["127.0.0.1", "10.0.0.0/8"] } });
    expect((await me(accessToken, "10.20.30.40")).statusCode).toBe(200);
    expect((await me(accessToken, "192.168.1.1")).json()).toMatchObject({ code: "ip_not_allowed" });
    expect((await login("ips@example.com", "192.168.1.1")).statusCode).toBe(403);
    expect((await login("ips@example.com", "10.9.9.9")).statusCode).toBe(200);
    // A wrong password from outside still reads as a wrong password.
    const wrong = await app.http.inject({
      method: "POST",
      url: "/auth/login",
      ...json({ identifier: "ips@example.com", password: "not the password" }),
      remoteAddress: "192.168.1.1",
    });
    expect(wrong.json()).toMatchObject({ code: "invalid_credentials" });
  });

  it("matches IPv6 CIDRs and refuses the refresh from outside too", async () => {
    const tokens = await registerUser(app);
    await patch(tokens.accessToken, { allowedIps: ["127.0.0.1", "2001:db8::/32"] });
    expect((await me(tokens.accessToken, "2001:db8:1::5")).statusCode).toBe(200);
    expect((await me(tokens.accessToken, "2001:db9::5")).statusCode).toBe(403);
    const refresh = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: tokens.refreshToken }),
      remoteAddress: "2001:db9::5",
    });
    expect(refresh.json()).toMatchObject({ code: "ip_not_allowed" });
    // Refused before rotating: the same token still refreshes from an allowed address.
    const again = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: tokens.refreshToken }),
    });
    expect(again.statusCode).toBe(200);
  });

  it("saves a list that leaves out the caller's own address, which then applies to it too", async () => {
    const { accessToken } = await registerUser(app, { email: "elsewhere@example.com" });
    const res = await patch(accessToken, { allowedIps: ["10.0.0.0/8"] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ user: { allowedIps: ["10.0.0.0/8"] } });
    expect((await me(accessToken)).json()).toMatchObject({ code: "ip_not_allowed" });
    expect((await me(res.json().accessToken)).statusCode).toBe(403);
    // The way back: sign in from an allowed address and clear the list.
    const inside = (await login("elsewhere@example.com", "10.1.2.3")).json<{
      accessToken: string;
    }>();
    const cleared = await patch(inside.accessToken, { allowedIps: [] }, "10.1.2.3");
    expect(cleared.json()).toMatchObject({ user: { allowedIps: [] } });
    expect((await me(accessToken, "198.51.100.1")).statusCode).toBe(200);
  });

  it("believes X-Forwarded-For only from a configured trusted proxy", async () => {
    await app.close();
    app = await startTestApp({ trustProxy: ["127.0.0.1"] });
    const { accessToken } = await registerUser(app);
    await patch(accessToken, { allowedIps: ["127.0.0.1", "203.0.113.0/24"] });
    const viaProxy = (xff: string, remoteAddress: string) =>
      app.http.inject({
        url: "/users/me",
        headers: { ...bearer(accessToken), "x-forwarded-for": xff },
        remoteAddress,
      });
    expect((await viaProxy("198.51.100.7", "127.0.0.1")).statusCode).toBe(403);
    expect((await viaProxy("203.0.113.7", "127.0.0.1")).statusCode).toBe(200);
    // From an untrusted peer the header is ignored: the peer's own address decides.
    expect((await viaProxy("203.0.113.7", "192.0.2.1")).statusCode).toBe(403);
  });
});

describe("guests and policies that a returning guest would walk around", () => {
  it("refuses allowedIps and MFA setup for a guest (403 forbidden)", async () => {
    const guest = await app.http.inject({
      method: "POST",
      url: "/auth/guest",
      ...json({ username: "g1" }),
    });
    const { accessToken } = guest.json<{ accessToken: string }>();
    expect((await patch(accessToken, { allowedIps: ["127.0.0.1"] })).json()).toMatchObject({
      code: "forbidden",
    });
    const setup = await app.http.inject({
      method: "POST",
      url: "/mfa/totp/setup",
      headers: bearer(accessToken),
    });
    expect(setup.json()).toMatchObject({ code: "forbidden" });
  });

  it("refuses an IPv4-mapped range wider than IPv4 with 400, not 500", async () => {
    const { accessToken } = await registerUser(app);
    const res = await patch(accessToken, { allowedIps: ["::ffff:0:0/90"] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "allowedIps.0" }],
    });
  });

  it("refuses a zero-padded IPv4 rule (010. would be octal 8.) with 400, saving nothing", async () => {
    const { accessToken } = await registerUser(app);
    const res = await patch(accessToken, { allowedIps: ["127.0.0.1", "010.0.0.0/8"] });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "allowedIps.1" }],
    });
    expect((await me(accessToken)).json().allowedIps).toEqual([]);
  });
});
