import type { LightMyRequestResponse } from "fastify";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, registerUser, startTestApp, type TestApp } from "./helpers.js";
import {
  enrolledUser,
  ORIGIN,
  PASSWORD,
  passwordLogin,
  STEP_MS,
  stepUpToken,
  totpAt,
} from "./mfa-helpers.js";

describe("POST /auth/step-up and requireStepUp", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const stepUp = (accessToken: string, body: unknown) =>
    app.http.inject({
      method: "POST",
      url: "/auth/step-up",
      headers: { ...bearer(accessToken), "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
  /** A step-up route with no other effect worth checking: disabling MFA that is off. */
  const guarded = (accessToken: string, headers: Record<string, string> = {}, cookies = {}) =>
    app.http.inject({
      method: "POST",
      url: "/mfa/totp/disable",
      headers: { ...bearer(accessToken), ...headers },
      cookies,
    });

  it("grants a 5-minute token bound to this session for the password", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const res = await stepUp(user.accessToken, { password: PASSWORD });
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json<{ stepUpToken: string; expiresIn: number }>();
    expect(body.expiresIn).toBe(300);
    expect(res.cookies.find((c) => c.name === "lk_step_up")).toMatchObject({
      value: body.stepUpToken,
      path: "/",
      httpOnly: true,
      secure: true,
      sameSite: "Lax",
      maxAge: 300,
    });
    expect(decodeProtectedHeader(body.stepUpToken).typ).toBe("step-up+jwt");
    expect(decodeJwt(body.stepUpToken)).toMatchObject({
      typ: "step_up",
      sub: user.user.id,
      sid: decodeJwt(user.accessToken).sid,
      amr: ["pwd"],
    });
    expect(
      (await guarded(user.accessToken, { "x-step-up-token": body.stepUpToken })).statusCode,
    ).toBe(204);
    // The cookie works as well, and the grant is reusable while it lasts.
    const viaCookie = await guarded(user.accessToken, {}, { lk_step_up: body.stepUpToken });
    expect(viaCookie.statusCode).toBe(204);
  });

  it("refuses a wrong password (401) and a code without MFA (400)", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const wrong = await stepUp(user.accessToken, { password: "not the password" });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ code: "invalid_credentials" });
    const code = await stepUp(user.accessToken, { code: "123456" });
    expect(code.statusCode).toBe(400);
    expect(code.json()).toMatchObject({ code: "invalid_code" });
  });

  it("wants exactly one of password and code", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    for (const body of [{}, { password: PASSWORD, code: "123456" }]) {
      const res = await stepUp(user.accessToken, body);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: "validation_failed" });
    }
  });

  it("accepts a TOTP code once", async () => {
    const user = await enrolledUser(app);
    const code = totpAt(user.secret, app.clock.now());
    const res = await stepUp(user.accessToken, { code });
    expect(res.statusCode).toBe(200);
    expect(decodeJwt(res.json<{ stepUpToken: string }>().stepUpToken).amr).toEqual(["otp"]);
    const replay = await stepUp(user.accessToken, { code });
    expect(replay.statusCode).toBe(400);
    expect(replay.json()).toMatchObject({ code: "invalid_code" });
  });

  it("accepts a backup code, as sign-in does, and uses it up", async () => {
    const user = await enrolledUser(app);
    const [code] = user.backupCodes;
    const res = await stepUp(user.accessToken, { code });
    expect(res.statusCode).toBe(200);
    expect(decodeJwt(res.json<{ stepUpToken: string }>().stepUpToken).amr).toEqual(["otp"]);
    expect((await stepUp(user.accessToken, { code })).json()).toMatchObject({
      code: "invalid_code",
    });
  });

  it("answers 403 step_up_required without a token, and after 5 minutes", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const none = await guarded(user.accessToken);
    expect(none.statusCode).toBe(403);
    expect(none.json()).toMatchObject({ code: "step_up_required" });
    const token = await stepUpToken(app, user.accessToken);
    app.clock.advance(4 * 60_000);
    expect((await guarded(user.accessToken, { "x-step-up-token": token })).statusCode).toBe(204);
    app.clock.advance(2 * 60_000);
    const expired = await guarded(user.accessToken, { "x-step-up-token": token });
    expect(expired.statusCode).toBe(403);
    expect(expired.json()).toMatchObject({ code: "step_up_required" });
  });

  it("binds the token to its session: session B cannot use session A's grant", async () => {
    const user = await registerUser(app, { email: "two@example.com", password: PASSWORD });
    const other = (await passwordLogin(app, "two@example.com")).json<{ accessToken: string }>();
    const tokenA = await stepUpToken(app, user.accessToken);
    const onB = await guarded(other.accessToken, { "x-step-up-token": tokenA });
    expect(onB.statusCode).toBe(403);
    expect(onB.json()).toMatchObject({ code: "step_up_required" });
    // Nor can another user's session.
    const stranger = await registerUser(app, { password: PASSWORD });
    expect((await guarded(stranger.accessToken, { "x-step-up-token": tokenA })).statusCode).toBe(
      403,
    );
    // Nor a revoked session.
    await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(user.accessToken),
    });
    expect((await guarded(user.accessToken, { "x-step-up-token": tokenA })).statusCode).toBe(401);
  });

  it("refuses other JWTs in the step-up slot and step-up tokens as access tokens", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const asStepUp = await guarded(user.accessToken, { "x-step-up-token": user.accessToken });
    expect(asStepUp.statusCode).toBe(403);
    const token = await stepUpToken(app, user.accessToken);
    const asAccess = await app.http.inject({ url: "/users/me", headers: bearer(token) });
    expect(asAccess.statusCode).toBe(401);
    expect(asAccess.json()).toMatchObject({ code: "invalid_token" });
  });

  it("limits failures per user: the 6th attempt is refused even with the right password", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    for (let i = 0; i < 5; i++) {
      expect((await stepUp(user.accessToken, { password: `wrong guess ${i}` })).statusCode).toBe(
        401,
      );
    }
    const limited = await stepUp(user.accessToken, { password: PASSWORD });
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ code: "rate_limited" });
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("works with the access cookie from an allowed Origin", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    app.clock.advance(STEP_MS);
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/step-up",
      cookies: { lk_access: user.accessToken },
      headers: { origin: ORIGIN, "content-type": "application/json" },
      payload: JSON.stringify({ password: PASSWORD }),
    });
    expect(res.statusCode).toBe(200);
  });

  it("every way of ending the session in this browser clears lk_step_up with its Path", async () => {
    const ends: Array<(accessToken: string, stepUp: string) => Promise<LightMyRequestResponse>> = [
      (accessToken) =>
        app.http.inject({ method: "POST", url: "/auth/logout", headers: bearer(accessToken) }),
      (accessToken) =>
        app.http.inject({ method: "POST", url: "/auth/logout/all", headers: bearer(accessToken) }),
      async (accessToken) => {
        const list = await app.http.inject({ url: "/sessions", headers: bearer(accessToken) });
        const current = list
          .json<{ sessions: Array<{ id: string; current: boolean }> }>()
          .sessions.find((s) => s.current);
        return app.http.inject({
          method: "DELETE",
          url: `/sessions/${current?.id}`,
          headers: bearer(accessToken),
        });
      },
      (accessToken, stepUp) =>
        app.http.inject({
          method: "DELETE",
          url: "/users/me",
          headers: { ...bearer(accessToken), "x-step-up-token": stepUp },
        }),
    ];
    for (const end of ends) {
      const user = await registerUser(app, { password: PASSWORD });
      const stepUp = await stepUpToken(app, user.accessToken);
      const res = await end(user.accessToken, stepUp);
      expect(res.statusCode).toBe(204);
      const cleared = res.cookies.find((c) => c.name === "lk_step_up");
      expect(cleared, res.raw.req.url).toMatchObject({ value: "", path: "/", maxAge: 0 });
      const names = res.cookies.map((c) => c.name);
      expect(new Set(names).size, "one Set-Cookie per name").toBe(names.length);
    }
  });
});
