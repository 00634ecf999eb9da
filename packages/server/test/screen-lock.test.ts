import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  introspect,
  introspectionToken,
  json,
  openAppDb,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";
import { enrolledUser, totpAt } from "./mfa-helpers.js";

const PASSWORD = "correct horse battery";
const MINUTE = 60_000;
const ORIGIN = "http://latchkey.test";
let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

const me = (token: string) => app.http.inject({ url: "/users/me", headers: bearer(token) });
const post = (url: string, token: string, body?: unknown) =>
  app.http.inject({
    method: "POST",
    url,
    headers: { ...bearer(token), ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });

/** A new user's access token once its screenLockMinutes is set (PATCH reissues the token). */
async function userWithScreenLock(minutes: number): Promise<string> {
  const { accessToken } = await registerUser(app);
  const res = await app.http.inject({
    method: "PATCH",
    url: "/users/me",
    ...json({ screenLockMinutes: minutes }),
    headers: { ...bearer(accessToken), "content-type": "application/json" },
  });
  return res.json<{ accessToken: string }>().accessToken;
}

describe("screen lock", () => {
  it("POST /sessions/lock answers 423 until /auth/unlock; older access tokens stay refused", async () => {
    const tokens = await registerUser(app, { email: "lock@example.com" });
    const other = (
      await app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "lock@example.com", password: PASSWORD }),
      })
    ).json<{ accessToken: string }>();
    expect((await post("/sessions/lock", tokens.accessToken)).statusCode).toBe(204);
    expect((await me(tokens.accessToken)).json()).toMatchObject({
      code: "screen_locked",
      status: 423,
    });
    expect((await me(other.accessToken)).statusCode).toBe(200); // only this session
    const refresh = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: tokens.refreshToken }),
    });
    expect(refresh.statusCode).toBe(423);

    const wrong = await post("/auth/unlock", tokens.accessToken, { password: "not it at all" });
    expect(wrong.json()).toMatchObject({ code: "invalid_credentials" });
    app.clock.advance(1000); // tokens minted after the unlock are in a later second
    const unlocked = await post("/auth/unlock", tokens.accessToken, { password: PASSWORD });
    expect(unlocked.statusCode).toBe(200);
    const fresh = unlocked.json<{ accessToken: string; refreshToken: string }>();
    expect((await me(fresh.accessToken)).statusCode).toBe(200);
    expect((await me(tokens.accessToken)).json()).toMatchObject({ code: "token_expired" });
    // The refresh token in the answer is the session's current one, and it rotates.
    const rotated = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: fresh.refreshToken }),
    });
    expect(rotated.statusCode).toBe(200);
  });

  it("refuses an access token issued in the same second as the unlock; the unlock's own works", async () => {
    const service = await introspectionToken(app);
    app.clock.set(Date.parse("2026-01-01T00:00:10.100Z"));
    const tokens = await registerUser(app);
    expect((await post("/sessions/lock", tokens.accessToken)).statusCode).toBe(204);
    app.clock.advance(700); // 10.800 s: the unlock falls in the old token's second
    const unlocked = await post("/auth/unlock", tokens.accessToken, { password: PASSWORD });
    expect(unlocked.statusCode).toBe(200);
    const fresh = unlocked.json<{ accessToken: string; refreshToken: string }>();

    // At once (the unlock evicted the cached session) and once the cache has expired.
    for (const wait of [0, 2_000]) {
      app.clock.advance(wait);
      const old = await me(tokens.accessToken);
      expect(old.statusCode).toBe(401);
      expect(old.json()).toMatchObject({ code: "token_expired" });
      expect((await me(fresh.accessToken)).statusCode).toBe(200);
      expect((await introspect(app, service, tokens.accessToken)).json()).toEqual({
        active: false,
      });
      expect((await introspect(app, service, fresh.accessToken)).json()).toMatchObject({
        active: true,
      });
    }
    // Dated at the cut-off, the start of the next second, so it alone passes.
    const oldIat = decodeJwt(tokens.accessToken).iat ?? 0;
    expect(oldIat).toBe(10 + Date.parse("2026-01-01T00:00:00Z") / 1000);
    expect(decodeJwt(fresh.accessToken).iat).toBe(oldIat + 1);
  });

  it("a refresh in the same second as the unlock gets an access token that works", async () => {
    app.clock.set(Date.parse("2026-01-01T00:00:10.100Z"));
    const tokens = await registerUser(app);
    await post("/sessions/lock", tokens.accessToken);
    const unlocked = await post("/auth/unlock", tokens.accessToken, { password: PASSWORD });
    app.clock.advance(300); // still 10.x s: before the cut-off at 11 s
    const refreshed = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: unlocked.json<{ refreshToken: string }>().refreshToken }),
    });
    expect(refreshed.statusCode).toBe(200);
    expect((await me(refreshed.json<{ accessToken: string }>().accessToken)).statusCode).toBe(200);
    expect((await me(tokens.accessToken)).json()).toMatchObject({ code: "token_expired" });
  });

  it("unlocking a session that is not locked changes nothing: its tokens keep working", async () => {
    const tokens = await registerUser(app);
    app.clock.advance(3_000);
    const unlocked = await post("/auth/unlock", tokens.accessToken, { password: PASSWORD });
    expect(unlocked.statusCode).toBe(200);
    app.clock.advance(2_000); // past the session cache
    expect((await me(tokens.accessToken)).statusCode).toBe(200);
    expect((await me(unlocked.json<{ accessToken: string }>().accessToken)).statusCode).toBe(200);
  });

  it("unlocking a session locked by idleness voids the tokens from before", async () => {
    const token = await userWithScreenLock(5);
    app.clock.advance(6 * MINUTE); // idle: locked, though no request has recorded it yet
    const unlocked = await post("/auth/unlock", token, { password: PASSWORD });
    expect(unlocked.statusCode).toBe(200);
    expect((await me(token)).json()).toMatchObject({ code: "token_expired" });
    expect((await me(unlocked.json<{ accessToken: string }>().accessToken)).statusCode).toBe(200);
  });

  it("unlocks with the access token that expired while the lock held (idle or explicit)", async () => {
    // The lock mostly outlasts a 15-minute token and the refresh answers 423 meanwhile:
    // refusing the expired token left signing in again as the only way on.
    const idle = await userWithScreenLock(5);
    app.clock.advance(40 * MINUTE);
    expect((await me(idle)).json()).toMatchObject({ code: "token_expired" });
    const unlocked = await post("/auth/unlock", idle, { password: PASSWORD });
    expect(unlocked.statusCode).toBe(200);
    expect((await me(unlocked.json<{ accessToken: string }>().accessToken)).statusCode).toBe(200);

    const explicit = await registerUser(app);
    expect((await post("/sessions/lock", explicit.accessToken)).statusCode).toBe(204);
    app.clock.advance(60 * MINUTE);
    const wrong = await post("/auth/unlock", explicit.accessToken, { password: "not it at all" });
    expect(wrong.json()).toMatchObject({ code: "invalid_credentials" });
    const again = await post("/auth/unlock", explicit.accessToken, { password: PASSWORD });
    expect(again.statusCode).toBe(200);
  });

  it("an expired access token unlocks nothing unless it was live at the session's last use", async () => {
    const tokens = await registerUser(app);
    app.clock.advance(16 * MINUTE);
    // Not locked: the answer stays token_expired (refresh it).
    const notLocked = await post("/auth/unlock", tokens.accessToken, { password: PASSWORD });
    expect(notLocked.json()).toMatchObject({ code: "token_expired", status: 401 });
    const refreshed = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: tokens.refreshToken }),
    });
    const current = refreshed.json<{ accessToken: string }>().accessToken;
    expect((await post("/sessions/lock", current)).statusCode).toBe(204);
    app.clock.advance(30 * MINUTE);
    // The first token had expired before the session was last used: not the device's own.
    const stale = await post("/auth/unlock", tokens.accessToken, { password: PASSWORD });
    expect(stale.json()).toMatchObject({ code: "token_expired" });
    const own = await post("/auth/unlock", current, { password: PASSWORD });
    expect(own.statusCode).toBe(200);
  });

  it("an expired token of an unknown key unlocks nothing, whatever its unverified sid says", async () => {
    // Regression: the sid of a token refused as expired was read unverified and looked up,
    // so a forged one reached the database (PostgreSQL answered 500 for a NUL in it).
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
    for (const sid of ["\u0000", "x".repeat(2000), "0190a0b0-0000-7000-8000-000000000000"]) {
      const forged = `${b64({ alg: "EdDSA", kid: "forged" })}.${b64({ sid, exp: 1 })}.AAAA`;
      const res = await post("/auth/unlock", forged, { password: PASSWORD });
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ status: 401, code: "token_expired" });
    }
  });

  it("unlocks by the lk_refresh cookie once lk_access aged out with its token", async () => {
    // A browser drops lk_access with its token (Max-Age = expiresIn), so after a long lock
    // only lk_refresh (Path=/auth) reaches /auth/unlock.
    const tokens = await registerUser(app);
    expect((await post("/sessions/lock", tokens.accessToken)).statusCode).toBe(204);
    app.clock.advance(40 * MINUTE);
    const unlockWithCookie = (refreshToken: string, origin?: string, authorization?: string) =>
      app.http.inject({
        method: "POST",
        url: "/auth/unlock",
        cookies: { lk_refresh: refreshToken },
        headers: {
          "content-type": "application/json",
          ...(origin ? { origin } : {}),
          ...(authorization ? { authorization } : {}),
        },
        payload: JSON.stringify({ password: PASSWORD }),
      });
    const forged = `${tokens.refreshToken.slice(0, -4)}AAAA`;
    expect((await unlockWithCookie(forged, ORIGIN)).json()).toMatchObject({
      code: "invalid_token",
    });
    expect((await unlockWithCookie(tokens.refreshToken)).json()).toMatchObject({
      code: "csrf_rejected",
    });
    // Another Authorization scheme carries no credential of ours (RFC 6750 §3.1): the
    // cookie still serves, as it does for every route.
    const unlocked = await unlockWithCookie(tokens.refreshToken, ORIGIN, "Basic dXNlcjpwYXNz");
    expect(unlocked.statusCode).toBe(200);
    expect(unlocked.cookies.map((c) => c.name)).toEqual(
      expect.arrayContaining(["lk_access", "lk_refresh"]),
    );
    expect((await me(unlocked.json<{ accessToken: string }>().accessToken)).statusCode).toBe(200);
    // Not locked any more: the refresh cookie alone unlocks nothing (refresh instead).
    const next = unlocked.json<{ refreshToken: string }>().refreshToken;
    expect((await unlockWithCookie(next, ORIGIN)).json()).toMatchObject({
      code: "unauthenticated",
      status: 401,
    });
  });

  it("locks a session idle longer than screenLockMinutes", async () => {
    const token = await userWithScreenLock(5);
    app.clock.advance(4 * MINUTE);
    expect((await me(token)).statusCode).toBe(200); // activity resets the idle clock
    app.clock.advance(4 * MINUTE);
    expect((await me(token)).statusCode).toBe(200);
    app.clock.advance(5 * MINUTE + 1000);
    expect((await me(token)).json()).toMatchObject({ code: "screen_locked" });
    // The lock was recorded: it holds after the session cache is re-read.
    app.clock.advance(2000);
    expect((await me(token)).statusCode).toBe(423);
  });

  it("only the locked session's own access token can unlock it", async () => {
    const a = await registerUser(app, { email: "a-lock@example.com" });
    const b = await registerUser(app, { email: "b-lock@example.com" });
    await post("/sessions/lock", a.accessToken);
    // B unlocking itself (not locked) is harmless; A stays locked.
    expect((await post("/auth/unlock", b.accessToken, { password: PASSWORD })).statusCode).toBe(
      200,
    );
    expect((await me(a.accessToken)).statusCode).toBe(423);
  });
});

describe("a refused lk_refresh cookie at unlock", () => {
  const unlockWithCookie = (refreshToken: string) =>
    app.http.inject({
      method: "POST",
      url: "/auth/unlock",
      cookies: { lk_refresh: refreshToken },
      headers: { "content-type": "application/json", origin: ORIGIN },
      payload: JSON.stringify({ password: PASSWORD }),
    });
  const refreshWithBody = (refreshToken: string) =>
    app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken }) });
  type Answer = Awaited<ReturnType<typeof unlockWithCookie>>;
  /** Cleared as a refused /auth/refresh clears them: each with its own Path and SameSite. */
  const expectSessionCookiesCleared = (res: Answer) => {
    const cleared = (name: string) => res.cookies.find((c) => c.name === name);
    expect(cleared("lk_refresh")).toMatchObject({
      value: "",
      maxAge: 0,
      path: "/auth",
      sameSite: "Strict",
    });
    expect(cleared("lk_access")).toMatchObject({ value: "", maxAge: 0, path: "/" });
    expect(cleared("lk_step_up")).toMatchObject({ value: "", maxAge: 0, path: "/" });
  };

  it("clears the session's cookies when its session was revoked or has ended", async () => {
    const tokens = await registerUser(app, { email: "gone@example.com" });
    const other = (
      await app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "gone@example.com", password: PASSWORD }),
      })
    ).json<{ accessToken: string }>();
    await post("/sessions/lock", tokens.accessToken);
    const sid = decodeJwt(tokens.accessToken).sid as string;
    const ended = await app.http.inject({
      method: "DELETE",
      url: `/sessions/${sid}`,
      headers: bearer(other.accessToken),
    });
    expect(ended.statusCode).toBe(204);
    const revoked = await unlockWithCookie(tokens.refreshToken);
    expect(revoked.json()).toMatchObject({ status: 401, code: "session_revoked" });
    expectSessionCookiesCleared(revoked);

    const old = await registerUser(app, { email: "old@example.com" });
    await post("/sessions/lock", old.accessToken);
    app.clock.advance(7 * 24 * 60 * MINUTE);
    const expired = await unlockWithCookie(old.refreshToken);
    expect(expired.json()).toMatchObject({ status: 401, code: "session_revoked" });
    expectSessionCookiesCleared(expired);

    const forged = await unlockWithCookie(`${old.refreshToken.slice(0, -4)}AAAA`);
    expect(forged.json()).toMatchObject({ status: 401, code: "invalid_token" });
    expectSessionCookiesCleared(forged);
  });

  it("clears them for a token rotated away, but not within the grace window", async () => {
    const first = await registerUser(app);
    const second = (await refreshWithBody(first.refreshToken)).json<{
      accessToken: string;
      refreshToken: string;
    }>();
    expect((await post("/sessions/lock", second.accessToken)).statusCode).toBe(204);
    // A concurrent refresh has just handed the browser the successor: clearing would drop it.
    const racing = await unlockWithCookie(first.refreshToken);
    expect(racing.json()).toMatchObject({ status: 401, code: "invalid_token" });
    expect(racing.cookies).toEqual([]);
    app.clock.advance(11_000);
    const stale = await unlockWithCookie(first.refreshToken);
    expect(stale.json()).toMatchObject({ status: 401, code: "invalid_token" });
    expectSessionCookiesCleared(stale);
    // Not reuse here: the session lives on, and its current token unlocks it.
    expect((await unlockWithCookie(second.refreshToken)).statusCode).toBe(200);
  });

  it("keeps them when the token is good: the session is not locked, or was just rotated", async () => {
    const tokens = await registerUser(app);
    const notLocked = await unlockWithCookie(tokens.refreshToken);
    expect(notLocked.json()).toMatchObject({ status: 401, code: "unauthenticated" });
    expect(notLocked.cookies).toEqual([]);
    // The cached copy of the session is a rotation behind the token for up to a second.
    const next = (await refreshWithBody(tokens.refreshToken)).json<{ refreshToken: string }>();
    const behind = await unlockWithCookie(next.refreshToken);
    expect(behind.statusCode).toBe(401);
    expect(behind.cookies).toEqual([]);
    app.clock.advance(1000);
    expect((await unlockWithCookie(next.refreshToken)).json()).toMatchObject({
      code: "unauthenticated",
    });
  });

  it("keeps them on a CSRF refusal and after a wrong password", async () => {
    const tokens = await registerUser(app);
    await post("/sessions/lock", tokens.accessToken);
    const csrf = await app.http.inject({
      method: "POST",
      url: "/auth/unlock",
      cookies: { lk_refresh: tokens.refreshToken },
      ...json({ password: PASSWORD }),
    });
    expect(csrf.json()).toMatchObject({ status: 403, code: "csrf_rejected" });
    expect(csrf.cookies).toEqual([]);
    const wrong = await app.http.inject({
      method: "POST",
      url: "/auth/unlock",
      cookies: { lk_refresh: tokens.refreshToken },
      headers: { "content-type": "application/json", origin: ORIGIN },
      payload: JSON.stringify({ password: "not the password at all" }),
    });
    expect(wrong.json()).toMatchObject({ status: 401, code: "invalid_credentials" });
    expect(wrong.cookies).toEqual([]);
  });
});

describe("unlock with a TOTP code", () => {
  it("is what an MFA account unlocks with once the lock outlived its access token", async () => {
    // Else the device's last token and the password alone would reopen the session for as
    // long as it lasts, where signing in again takes the second factor too.
    const user = await enrolledUser(app);
    expect((await post("/sessions/lock", user.accessToken)).statusCode).toBe(204);
    // Live token: the password serves, as before.
    const live = await post("/auth/unlock", user.accessToken, { password: PASSWORD });
    expect(live.statusCode).toBe(200);
    const token = live.json<{ accessToken: string }>().accessToken;
    expect((await post("/sessions/lock", token)).statusCode).toBe(204);
    app.clock.advance(40 * MINUTE);
    const byPassword = await post("/auth/unlock", token, { password: PASSWORD });
    expect(byPassword.json()).toMatchObject({ code: "mfa_required", status: 401 });
    const byCode = await post("/auth/unlock", token, {
      code: totpAt(user.secret, app.clock.now()),
    });
    expect(byCode.statusCode).toBe(200);
  });

  it("accepts the current code once and refuses a replay", async () => {
    const user = await enrolledUser(app);
    await post("/sessions/lock", user.accessToken);
    const code = totpAt(user.secret, app.clock.now());
    const wrong = await post("/auth/unlock", user.accessToken, {
      code: "000000" === code ? "111111" : "000000",
    });
    expect(wrong.json()).toMatchObject({ code: "invalid_code" });
    const ok = await post("/auth/unlock", user.accessToken, { code });
    expect(ok.statusCode).toBe(200);
    await post("/sessions/lock", ok.json<{ accessToken: string }>().accessToken);
    const replay = await post("/auth/unlock", ok.json<{ accessToken: string }>().accessToken, {
      code,
    });
    expect(replay.json()).toMatchObject({ code: "invalid_code" });
  });
});

describe("idle lock and activity", () => {
  it("counts every request as activity, not only the once-a-minute write", async () => {
    const token = await userWithScreenLock(1);
    for (let i = 0; i < 6; i++) {
      app.clock.advance(30_000);
      expect((await me(token)).statusCode).toBe(200);
    }
    app.clock.advance(61_000);
    expect((await me(token)).statusCode).toBe(423);
  });
});

describe("guests", () => {
  // A guest has no password, code or passkey: a locked guest session could never be unlocked.
  const startGuest = async () =>
    (
      await app.http.inject({
        method: "POST",
        url: "/auth/guest",
        ...json({ username: "visitor" }),
      })
    ).json<{ user: { id: string }; accessToken: string }>();
  const patchMe = (token: string, body: unknown) =>
    app.http.inject({
      method: "PATCH",
      url: "/users/me",
      ...json(body),
      headers: { ...bearer(token), "content-type": "application/json" },
    });

  it("cannot lock the session (403 forbidden), which stays usable", async () => {
    const guest = await startGuest();
    const res = await post("/sessions/lock", guest.accessToken);
    expect(res.json()).toMatchObject({ status: 403, code: "forbidden" });
    expect((await me(guest.accessToken)).statusCode).toBe(200);
  });

  it("cannot set screenLockMinutes (403 forbidden), only clear it", async () => {
    const guest = await startGuest();
    expect((await patchMe(guest.accessToken, { screenLockMinutes: 10 })).json()).toMatchObject({
      status: 403,
      code: "forbidden",
    });
    const cleared = await patchMe(guest.accessToken, { screenLockMinutes: null });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.json()).toMatchObject({ user: { screenLockMinutes: null } });
  });

  it("is never locked when idle, even with a screenLockMinutes stored before the rule", async () => {
    const guest = await startGuest();
    const db = await openAppDb(app);
    try {
      await db.kysely
        .updateTable("users")
        .set({ screen_lock_minutes: 5 })
        .where("id", "=", guest.user.id)
        .execute();
    } finally {
      await db.close();
    }
    app.clock.advance(10 * MINUTE); // twice the stored limit, within the access token's life
    expect((await me(guest.accessToken)).statusCode).toBe(200);
  });

  it("may lock once upgraded, and unlocks with the new password", async () => {
    const guest = await startGuest();
    const upgraded = await app.http.inject({
      method: "POST",
      url: "/auth/guest/upgrade",
      ...json({ email: "was-guest@example.com", password: PASSWORD }),
      headers: { ...bearer(guest.accessToken), "content-type": "application/json" },
    });
    const { accessToken } = upgraded.json<{ accessToken: string }>();
    expect((await post("/sessions/lock", accessToken)).statusCode).toBe(204);
    expect((await me(accessToken)).statusCode).toBe(423);
    app.clock.advance(1000);
    const unlocked = await post("/auth/unlock", accessToken, { password: PASSWORD });
    expect(unlocked.statusCode).toBe(200);
    const fresh = unlocked.json<{ accessToken: string }>().accessToken;
    expect((await patchMe(fresh, { screenLockMinutes: 10 })).statusCode).toBe(200);
  });
});

describe("accounts without a password or MFA (signed in through a provider only)", () => {
  /** A registered user whose password is gone, as an account made by OAuth sign-in has none. */
  async function providerOnlyUser(screenLockMinutes: number | null = null) {
    const tokens = await registerUser(app);
    const db = await openAppDb(app);
    try {
      await db.kysely
        .updateTable("users")
        .set({ password_hash: null, screen_lock_minutes: screenLockMinutes })
        .where("id", "=", tokens.user.id)
        .execute();
    } finally {
      await db.close();
    }
    app.clock.advance(2000); // past the session cache, which read the account before
    return tokens;
  }

  it("cannot lock the session or set screenLockMinutes (403 forbidden)", async () => {
    const { accessToken } = await providerOnlyUser();
    expect((await post("/sessions/lock", accessToken)).json()).toMatchObject({
      status: 403,
      code: "forbidden",
    });
    const res = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      ...json({ screenLockMinutes: 10 }),
      headers: { ...bearer(accessToken), "content-type": "application/json" },
    });
    expect(res.json()).toMatchObject({ status: 403, code: "forbidden" });
    expect((await me(accessToken)).statusCode).toBe(200);
  });

  it("is never locked when idle, whatever screenLockMinutes is stored", async () => {
    const { accessToken } = await providerOnlyUser(5);
    app.clock.advance(10 * MINUTE); // twice the stored limit, within the access token's life
    expect((await me(accessToken)).statusCode).toBe(200);
  });
});
