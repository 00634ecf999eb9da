import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  introspect,
  introspectionToken,
  json,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";
import { PASSWORD, passwordLogin, stepUpToken } from "./mfa-helpers.js";

const NEW_PASSWORD = "a brand new passphrase";

interface TokenBody {
  accessToken: string;
  refreshToken: string;
  user: { id: string };
}

describe("POST /auth/password/change", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const change = (accessToken: string, stepUp: string | undefined, body: unknown) =>
    app.http.inject({
      method: "POST",
      url: "/auth/password/change",
      headers: {
        ...bearer(accessToken),
        ...(stepUp ? { "x-step-up-token": stepUp } : {}),
        "content-type": "application/json",
      },
      payload: JSON.stringify(body),
    });
  const me = (accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });
  const refresh = (refreshToken: string) =>
    app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken }) });
  it("needs a step-up token", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const res = await change(user.accessToken, undefined, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: "step_up_required" });
  });

  it("revokes every other session and reissues this one's tokens", async () => {
    const here = await registerUser(app, { email: "pw@example.com", password: PASSWORD });
    const elsewhere = (await passwordLogin(app, "pw@example.com")).json<TokenBody>();
    app.clock.advance(2_000); // the old access token is from an earlier second than the change
    const stepUp = await stepUpToken(app, here.accessToken);
    const res = await change(here.accessToken, stepUp, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(200);
    const fresh = res.json<TokenBody>();
    const sid = decodeJwt(here.accessToken).sid;
    expect(decodeJwt(fresh.accessToken).sid).toBe(sid); // the same session, a new generation
    expect(fresh.refreshToken.split(".")[1]).toBe("1");
    expect(res.cookies.find((c) => c.name === "lk_access")?.value).toBe(fresh.accessToken);

    expect((await me(fresh.accessToken)).statusCode).toBe(200);
    const oldAccess = await me(here.accessToken);
    expect(oldAccess.statusCode).toBe(401);
    expect(oldAccess.json()).toMatchObject({ code: "token_expired" });
    const other = await me(elsewhere.accessToken);
    expect(other.statusCode).toBe(401);
    expect(other.json()).toMatchObject({ code: "session_revoked" });
    expect((await refresh(elsewhere.refreshToken)).json()).toMatchObject({
      code: "session_revoked",
    });
    const sessions = await app.svc.store.sessions.listActive(here.user.id, app.clock.now());
    expect(sessions.map((s) => s.id)).toEqual([sid]);

    // The new refresh token rotates; the new password signs in, the old one does not.
    expect((await refresh(fresh.refreshToken)).statusCode).toBe(200);
    expect((await passwordLogin(app, "pw@example.com", NEW_PASSWORD)).statusCode).toBe(200);
    expect((await passwordLogin(app, "pw@example.com")).statusCode).toBe(401);
    await app.svc.auditLog.flush();
    const audit = await app.svc.store.audit.listForUser(here.user.id);
    expect(audit.map((e) => e.type)).toContain("password_changed");
  });

  it("refuses an access token issued in the same second as the change; the reissued one works", async () => {
    const service = await introspectionToken(app);
    app.clock.set(Date.parse("2026-01-01T00:00:10.100Z"));
    const here = await registerUser(app, { password: PASSWORD });
    const stepUp = await stepUpToken(app, here.accessToken);
    app.clock.advance(700); // 10.800 s: the change falls in the old token's second
    const res = await change(here.accessToken, stepUp, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(200);
    const fresh = res.json<TokenBody>();
    // At once (the change evicted the cached session) and once the cache has expired.
    for (const wait of [0, 2_000]) {
      app.clock.advance(wait);
      const oldAccess = await me(here.accessToken);
      expect(oldAccess.statusCode).toBe(401);
      expect(oldAccess.json()).toMatchObject({ code: "token_expired" });
      expect((await me(fresh.accessToken)).statusCode).toBe(200);
      expect((await introspect(app, service, here.accessToken)).json()).toEqual({ active: false });
      expect((await introspect(app, service, fresh.accessToken)).json()).toMatchObject({
        active: true,
      });
    }

    const old = decodeJwt(here.accessToken);
    const renewed = decodeJwt(fresh.accessToken);
    expect(old.iat).toBe(10 + Date.parse("2026-01-01T00:00:00Z") / 1000);
    // Dated at the cut-off, the start of the next second, so it alone passes.
    expect(renewed.iat).toBe((old.iat ?? 0) + 1);
    expect((renewed.exp ?? 0) - (renewed.iat ?? 0)).toBe(app.svc.config.tokens.accessTtlSeconds);
  });

  it("a refresh in the same second as the change gets an access token that works", async () => {
    app.clock.set(Date.parse("2026-01-01T00:00:10.100Z"));
    const here = await registerUser(app, { password: PASSWORD });
    const stepUp = await stepUpToken(app, here.accessToken);
    const res = await change(here.accessToken, stepUp, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    app.clock.advance(300); // still 10.x s: before the cut-off at 11 s
    const refreshed = await refresh(res.json<TokenBody>().refreshToken);
    expect(refreshed.statusCode).toBe(200);
    const { accessToken } = refreshed.json<TokenBody>();
    expect((await me(accessToken)).statusCode).toBe(200);
    expect((await me(here.accessToken)).json()).toMatchObject({ code: "token_expired" });
  });

  it("treats the pre-change refresh token as reuse at once: no grace window hands it the new token", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const stepUp = await stepUpToken(app, user.accessToken);
    const res = await change(user.accessToken, stepUp, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(200);
    const reused = await refresh(user.refreshToken);
    expect(reused.statusCode).toBe(401);
    expect(reused.json()).toMatchObject({ code: "refresh_token_reused" });
  });

  it("refuses a wrong current password (401) and changes nothing", async () => {
    const user = await registerUser(app, { email: "keep@example.com", password: PASSWORD });
    const other = (await passwordLogin(app, "keep@example.com")).json<TokenBody>();
    const stepUp = await stepUpToken(app, user.accessToken);
    const res = await change(user.accessToken, stepUp, {
      currentPassword: "not my password",
      newPassword: NEW_PASSWORD,
    });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: "invalid_credentials" });
    expect((await me(other.accessToken)).statusCode).toBe(200);
    expect((await me(user.accessToken)).statusCode).toBe(200);
    expect((await passwordLogin(app, "keep@example.com")).statusCode).toBe(200);
  });

  it("counts wrong current passwords in the per-user limit: the 6th try is 429, even if right", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const stepUp = await stepUpToken(app, user.accessToken);
    for (let i = 0; i < 5; i++) {
      const res = await change(user.accessToken, stepUp, {
        currentPassword: `guess number ${i}`,
        newPassword: NEW_PASSWORD,
      });
      expect(res.json()).toMatchObject({ code: "invalid_credentials" });
    }
    const limited = await change(user.accessToken, stepUp, {
      currentPassword: PASSWORD,
      newPassword: NEW_PASSWORD,
    });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: "rate_limited" });
  });

  it("lets one of several concurrent changes from the same password win", async () => {
    const user = await registerUser(app, { email: "race@example.com", password: PASSWORD });
    const stepUp = await stepUpToken(app, user.accessToken);
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        change(user.accessToken, stepUp, {
          currentPassword: PASSWORD,
          newPassword: `${NEW_PASSWORD} ${i}`,
        }),
      ),
    );
    const won = answers.filter((res) => res.statusCode === 200);
    expect(won).toHaveLength(1);
    for (const res of answers.filter((r) => r.statusCode !== 200)) {
      expect(res.json()).toMatchObject({ code: "invalid_credentials" });
    }
    // The winner's tokens and password are the ones in effect.
    const winner = answers.indexOf(won[0] as (typeof answers)[number]) + 1;
    expect((await me(won[0]?.json<TokenBody>().accessToken as string)).statusCode).toBe(200);
    const login = await passwordLogin(app, "race@example.com", `${NEW_PASSWORD} ${winner}`);
    expect(login.statusCode).toBe(200);
  });

  it("applies the password policy to the new password (400 validation_failed)", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const stepUp = await stepUpToken(app, user.accessToken);
    const res = await change(user.accessToken, stepUp, {
      currentPassword: PASSWORD,
      newPassword: "short",
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "newPassword" }],
    });
  });
});
