import { decodeJwt, decodeProtectedHeader } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, json, openAppDb, registerUser, startTestApp, type TestApp } from "./helpers.js";
import {
  enrolledUser,
  finishMfa,
  ORIGIN,
  PASSWORD,
  passwordLogin,
  STEP_MS,
  stepUpToken,
  totpAt,
} from "./mfa-helpers.js";

const BACKUP_CODE = /^[ABCDEFGHJKMNPQRSTUVWXYZ2-9]{8}$/;

interface MfaPending {
  mfaRequired: true;
  mfaToken: string;
  expiresIn: number;
}

describe("TOTP MFA", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const post = (url: string, accessToken: string, body?: unknown, extra = {}) =>
    app.http.inject({
      method: "POST",
      url,
      headers: { ...bearer(accessToken), ...extra, "content-type": "application/json" },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  const me = (accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });
  /** The user's backup codes as stored (keyed hashes), read straight from the database. */
  const storedBackupCodeHashes = async (userId: string) => {
    const db = await openAppDb(app);
    try {
      const rows = await db.kysely
        .selectFrom("backup_codes")
        .select("code_hash")
        .where("user_id", "=", userId)
        .execute();
      return rows.map((r) => r.code_hash);
    } finally {
      await db.close();
    }
  };
  const mfaToken = async (email: string) => {
    const res = await passwordLogin(app, email);
    expect(res.statusCode).toBe(200);
    return res.json<MfaPending>().mfaToken;
  };

  describe("setup and enable", () => {
    it("sets up with a secret, key URI and QR code, and enables with a real code", async () => {
      const user = await registerUser(app, { email: "ada@example.com" });
      const setup = await post("/mfa/totp/setup", user.accessToken);
      expect(setup.statusCode).toBe(200);
      expect(setup.headers["cache-control"]).toBe("no-store");
      const { secret, otpauthUrl, qrCodeDataUrl } = setup.json<Record<string, string>>();
      expect(secret).toMatch(/^[A-Z2-7]{32}$/); // 160 bits, base32
      const uri = new URL(otpauthUrl as string);
      expect(uri.protocol).toBe("otpauth:");
      expect(uri.host).toBe("totp");
      expect(uri.searchParams.get("secret")).toBe(secret);
      expect(uri.searchParams.get("issuer")).toBe("latchkey.test");
      expect(uri.searchParams.get("algorithm")).toBe("SHA1");
      expect(uri.searchParams.get("digits")).toBe("6");
      expect(uri.searchParams.get("period")).toBe("30");
      expect(decodeURIComponent(uri.pathname)).toContain("ada@example.com");
      expect(qrCodeDataUrl).toMatch(/^data:image\/png;base64,/);
      // Pending only: MFA is not on until a code proves the app has the secret.
      expect((await me(user.accessToken)).json()).toMatchObject({ mfaEnabled: false });
      expect((await passwordLogin(app, "ada@example.com")).json()).toHaveProperty("accessToken");

      const enable = await post("/mfa/totp/enable", user.accessToken, {
        code: totpAt(secret as string, app.clock.now()),
      });
      expect(enable.statusCode).toBe(200);
      const { backupCodes } = enable.json<{ backupCodes: string[] }>();
      expect(backupCodes).toHaveLength(10);
      for (const code of backupCodes) expect(code).toMatch(BACKUP_CODE);
      expect(new Set(backupCodes).size).toBe(10);
      expect((await me(user.accessToken)).json()).toMatchObject({ mfaEnabled: true });
    });

    it("refuses a wrong code (400 invalid_code) and an enable without setup (409)", async () => {
      const user = await registerUser(app);
      const early = await post("/mfa/totp/enable", user.accessToken, { code: "123456" });
      expect(early.statusCode).toBe(409);
      expect(early.json()).toMatchObject({ code: "conflict" });
      const { secret } = (await post("/mfa/totp/setup", user.accessToken)).json<{
        secret: string;
      }>();
      const good = totpAt(secret, app.clock.now());
      const wrong = await post("/mfa/totp/enable", user.accessToken, {
        code: good === "000000" ? "111111" : "000000",
      });
      expect(wrong.statusCode).toBe(400);
      expect(wrong.json()).toMatchObject({ code: "invalid_code" });
      // A code of the wrong shape is just a wrong code.
      for (const code of ["abcdef", "12", "1234567"]) {
        const odd = await post("/mfa/totp/enable", user.accessToken, { code });
        expect(odd.json()).toMatchObject({ status: 400, code: "invalid_code" });
      }
    });

    it("answers 409 conflict to setup and enable once MFA is on", async () => {
      const user = await enrolledUser(app);
      const again = await post("/mfa/totp/setup", user.accessToken);
      expect(again.statusCode).toBe(409);
      expect(again.json()).toMatchObject({ code: "conflict" });
      const enable = await post("/mfa/totp/enable", user.accessToken, {
        code: totpAt(user.secret, app.clock.now()),
      });
      expect(enable.statusCode).toBe(409);
    });

    it("accepts a code of the previous or next step, but not two steps off", async () => {
      const user = await registerUser(app);
      const { secret } = (await post("/mfa/totp/setup", user.accessToken)).json<{
        secret: string;
      }>();
      const twoStepsAgo = totpAt(secret, app.clock.now() - 2 * STEP_MS);
      const res = await post("/mfa/totp/enable", user.accessToken, { code: twoStepsAgo });
      expect(res.statusCode).toBe(400);
      const lastStep = totpAt(secret, app.clock.now() - STEP_MS);
      expect(
        (await post("/mfa/totp/enable", user.accessToken, { code: lastStep })).statusCode,
      ).toBe(200);
    });

    it("re-enabling with a new secret takes its code in the step the old secret last used", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const enable = async () => {
        const { secret } = (await post("/mfa/totp/setup", user.accessToken)).json<{
          secret: string;
        }>();
        return post("/mfa/totp/enable", user.accessToken, {
          code: totpAt(secret, app.clock.now()),
        });
      };
      expect((await enable()).statusCode).toBe(200);
      const stepUp = await stepUpToken(app, user.accessToken);
      const off = await post("/mfa/totp/disable", user.accessToken, undefined, {
        "x-step-up-token": stepUp,
      });
      expect(off.statusCode).toBe(204);
      const again = await enable();
      expect(again.statusCode, again.body).toBe(200);
    });

    it("names the issuer without a colon when the public URL has a port or an IPv6 host (regression: `localhost:8080`)", async () => {
      // Key Uri Format: a colon separates issuer and account in the label, so neither may
      // hold one; `127.0.0.1:8080:ada@…` read as issuer 127.0.0.1, account `8080:ada@…`.
      for (const [publicUrl, issuer] of [
        ["http://127.0.0.1:8080", "127.0.0.1"],
        ["https://auth.example.com:8443", "auth.example.com"],
        ["http://[::1]:8080", "Latchkey"],
      ] as const) {
        const other = await startTestApp({ publicUrl });
        try {
          const user = await registerUser(other, { email: "ada@example.com" });
          const res = await other.http.inject({
            method: "POST",
            url: "/mfa/totp/setup",
            headers: bearer(user.accessToken),
          });
          const uri = new URL(res.json<{ otpauthUrl: string }>().otpauthUrl);
          expect(uri.searchParams.get("issuer")).toBe(issuer);
          expect(decodeURIComponent(uri.pathname)).toBe(`/${issuer}:ada@example.com`);
        } finally {
          await other.close();
        }
      }
    });

    it("keeps the TOTP secret sealed at rest when a master key is set", async () => {
      const sealed = await startTestApp({ masterKey: "m".repeat(40) });
      try {
        const user = await registerUser(sealed);
        const res = await sealed.http.inject({
          method: "POST",
          url: "/mfa/totp/setup",
          headers: bearer(user.accessToken),
        });
        const { secret } = res.json<{ secret: string }>();
        const db = await openAppDb(sealed);
        try {
          const row = await db.kysely
            .selectFrom("users")
            .select(["totp_secret", "mfa_enabled"])
            .where("id", "=", user.user.id)
            .executeTakeFirstOrThrow();
          expect(row.mfa_enabled).toBe(0);
          expect(row.totp_secret).toMatch(/^enc:v1:/);
          expect(row.totp_secret).not.toContain(secret);
        } finally {
          await db.close();
        }
        // The sealed secret opens again for verification.
        const enable = await sealed.http.inject({
          method: "POST",
          url: "/mfa/totp/enable",
          headers: { ...bearer(user.accessToken), "content-type": "application/json" },
          payload: JSON.stringify({ code: totpAt(secret, sealed.clock.now()) }),
        });
        expect(enable.statusCode).toBe(200);
      } finally {
        await sealed.close();
      }
    });
  });

  describe("one-time codes", () => {
    it("refuses a TOTP code a second time, even within its window", async () => {
      const user = await enrolledUser(app);
      const code = totpAt(user.secret, app.clock.now());
      const first = await finishMfa(app, await mfaToken(user.email), code);
      expect(first.statusCode).toBe(200);
      app.clock.advance(10_000); // same step
      const replay = await finishMfa(app, await mfaToken(user.email), code);
      expect(replay.statusCode).toBe(400);
      expect(replay.json()).toMatchObject({ code: "invalid_code" });
      // A step later the code is still inside the ±1 window, and still refused.
      app.clock.advance(STEP_MS);
      expect((await finishMfa(app, await mfaToken(user.email), code)).statusCode).toBe(400);
      const fresh = totpAt(user.secret, app.clock.now());
      expect((await finishMfa(app, await mfaToken(user.email), fresh)).statusCode).toBe(200);
    });

    it("accepts each backup code once, in any case and with a dash", async () => {
      const user = await enrolledUser(app);
      const code = user.backupCodes[0] as string;
      const typed = `${code.slice(0, 4)}-${code.slice(4)}`.toLowerCase();
      const first = await finishMfa(app, await mfaToken(user.email), typed);
      expect(first.statusCode).toBe(200);
      expect(decodeJwt(first.json<{ accessToken: string }>().accessToken).amr).toEqual([
        "pwd",
        "otp",
      ]);
      const again = await finishMfa(app, await mfaToken(user.email), code);
      expect(again.statusCode).toBe(400);
      expect(again.json()).toMatchObject({ code: "invalid_code" });
      const other = await finishMfa(app, await mfaToken(user.email), user.backupCodes[1] as string);
      expect(other.statusCode).toBe(200);
    });

    it("stores backup codes only as keyed hashes", async () => {
      const user = await enrolledUser(app);
      const stored = await storedBackupCodeHashes(user.userId);
      expect(stored).toHaveLength(10);
      for (const code of user.backupCodes) expect(stored.join(" ")).not.toContain(code);
    });

    it("regenerates backup codes behind step-up and voids the old set", async () => {
      const user = await enrolledUser(app);
      const refused = await post("/mfa/backup-codes", user.accessToken);
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ code: "step_up_required" });
      const stepUp = await stepUpToken(app, user.accessToken);
      const res = await post("/mfa/backup-codes", user.accessToken, undefined, {
        "x-step-up-token": stepUp,
      });
      expect(res.statusCode).toBe(200);
      const fresh = res.json<{ backupCodes: string[] }>().backupCodes;
      expect(fresh).toHaveLength(10);
      const old = await finishMfa(app, await mfaToken(user.email), user.backupCodes[2] as string);
      expect(old.statusCode).toBe(400);
      const ok = await finishMfa(app, await mfaToken(user.email), fresh[0] as string);
      expect(ok.statusCode).toBe(200);
    });

    it("concurrent regenerations leave exactly one of the answered sets valid", async () => {
      const user = await enrolledUser(app);
      const stepUp = await stepUpToken(app, user.accessToken);
      const answers = await Promise.all(
        Array.from({ length: 6 }, () =>
          post("/mfa/backup-codes", user.accessToken, undefined, { "x-step-up-token": stepUp }),
        ),
      );
      expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
      const stored = (await storedBackupCodeHashes(user.userId)).sort();
      const sets = answers.map((a) =>
        a
          .json<{ backupCodes: string[] }>()
          .backupCodes.map((code) => app.svc.backupCodes.hash(user.userId, code))
          .sort(),
      );
      expect(sets.filter((set) => set.join() === stored.join())).toHaveLength(1);
    });

    it("answers 409 to a backup-code regeneration while MFA is off", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const stepUp = await stepUpToken(app, user.accessToken);
      const res = await post("/mfa/backup-codes", user.accessToken, undefined, {
        "x-step-up-token": stepUp,
      });
      expect(res.statusCode).toBe(409);
    });
  });

  describe("disable", () => {
    it("needs step-up, then turns MFA off and drops the codes", async () => {
      const user = await enrolledUser(app);
      const refused = await post("/mfa/totp/disable", user.accessToken);
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ code: "step_up_required" });
      const stepUp = await stepUpToken(app, user.accessToken);
      const res = await post("/mfa/totp/disable", user.accessToken, undefined, {
        "x-step-up-token": stepUp,
      });
      expect(res.statusCode).toBe(204);
      expect((await me(user.accessToken)).json()).toMatchObject({ mfaEnabled: false });
      const login = await passwordLogin(app, user.email);
      expect(login.json()).toHaveProperty("accessToken");
      const db = await openAppDb(app);
      try {
        const row = await db.kysely
          .selectFrom("users")
          .select("totp_secret")
          .where("id", "=", user.userId)
          .executeTakeFirstOrThrow();
        expect(row.totp_secret).toBeNull();
      } finally {
        await db.close();
      }
      expect(await storedBackupCodeHashes(user.userId)).toHaveLength(0);
    });
  });

  describe("login with MFA", () => {
    it("answers MFA pending without tokens or a session, then finishes with the header", async () => {
      const user = await enrolledUser(app);
      const before = await app.svc.store.sessions.listActive(user.userId, app.clock.now());
      const login = await passwordLogin(app, user.email);
      expect(login.statusCode).toBe(200);
      const body = login.json<MfaPending & Record<string, unknown>>();
      expect(body).toEqual({ mfaRequired: true, mfaToken: expect.any(String), expiresIn: 600 });
      expect(login.cookies.map((c) => c.name)).toEqual(["lk_mfa"]);
      expect(login.cookies[0]).toMatchObject({
        value: body.mfaToken,
        path: "/auth",
        httpOnly: true,
        secure: true,
        sameSite: "Lax",
        maxAge: 600,
      });
      expect(decodeProtectedHeader(body.mfaToken).typ).toBe("mfa+jwt");
      expect(decodeJwt(body.mfaToken)).toMatchObject({ typ: "mfa", sub: user.userId });
      const during = await app.svc.store.sessions.listActive(user.userId, app.clock.now());
      expect(during).toHaveLength(before.length);

      const done = await finishMfa(app, body.mfaToken, totpAt(user.secret, app.clock.now()));
      expect(done.statusCode).toBe(200);
      const tokens = done.json<{ accessToken: string; refreshToken: string }>();
      const claims = decodeJwt(tokens.accessToken);
      expect(claims).toMatchObject({ sub: user.userId, amr: ["pwd", "otp"] });
      expect(done.cookies.find((c) => c.name === "lk_mfa")?.value).toBe("");
      expect((await me(tokens.accessToken)).statusCode).toBe(200);
      const after = await app.svc.store.sessions.listActive(user.userId, app.clock.now());
      expect(after.map((s) => s.id)).toContain(claims.sid);
      expect(after).toHaveLength(before.length + 1);
    });

    it("finishes with the lk_mfa cookie from an allowed Origin, and refuses it without one", async () => {
      const user = await enrolledUser(app);
      const token = await mfaToken(user.email);
      const code = totpAt(user.secret, app.clock.now());
      const noOrigin = await app.http.inject({
        method: "POST",
        url: "/auth/login/mfa",
        cookies: { lk_mfa: token },
        ...json({ code }),
      });
      expect(noOrigin.statusCode).toBe(403);
      expect(noOrigin.json()).toMatchObject({ code: "csrf_rejected" });
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/login/mfa",
        cookies: { lk_mfa: token },
        headers: { origin: ORIGIN, "content-type": "application/json" },
        payload: JSON.stringify({ code }),
      });
      expect(res.statusCode).toBe(200);
      expect(res.cookies.find((c) => c.name === "lk_access")?.value).toBeTruthy();
    });

    it("answers 401 unauthenticated without an MFA token and invalid_token for other JWTs", async () => {
      const user = await enrolledUser(app);
      const none = await app.http.inject({
        method: "POST",
        url: "/auth/login/mfa",
        ...json({ code: "123456" }),
      });
      expect(none.statusCode).toBe(401);
      expect(none.json()).toMatchObject({ code: "unauthenticated" });
      // An access token is no MFA token, and an MFA token is no access token.
      const access = await finishMfa(app, user.accessToken, totpAt(user.secret, app.clock.now()));
      expect(access.statusCode).toBe(401);
      expect(access.json()).toMatchObject({ code: "invalid_token" });
      const asAccess = await me(await mfaToken(user.email));
      expect(asAccess.statusCode).toBe(401);
      expect(asAccess.json()).toMatchObject({ code: "invalid_token" });
    });

    it("uses an MFA token once", async () => {
      const user = await enrolledUser(app);
      const token = await mfaToken(user.email);
      expect((await finishMfa(app, token, totpAt(user.secret, app.clock.now()))).statusCode).toBe(
        200,
      );
      app.clock.advance(STEP_MS);
      const again = await finishMfa(app, token, totpAt(user.secret, app.clock.now()));
      expect(again.statusCode).toBe(401);
      expect(again.json()).toMatchObject({ code: "invalid_token" });
    });

    it("spends no code on a used MFA token, and keeps the token after a wrong code", async () => {
      const user = await enrolledUser(app);
      const [first, second] = user.backupCodes;
      const token = await mfaToken(user.email);
      // A typo first: the token survives it.
      expect((await finishMfa(app, token, "zzzzzzzz")).statusCode).toBe(400);
      expect((await finishMfa(app, token, first as string)).statusCode).toBe(200);
      const replay = await finishMfa(app, token, second as string);
      expect(replay.statusCode).toBe(401);
      expect(replay.json()).toMatchObject({ code: "invalid_token" });
      // The refused request left the second code unspent, and the TOTP step too.
      const code = totpAt(user.secret, app.clock.now());
      expect((await finishMfa(app, token, code)).statusCode).toBe(401);
      expect((await finishMfa(app, await mfaToken(user.email), second as string)).statusCode).toBe(
        200,
      );
      expect((await finishMfa(app, await mfaToken(user.email), code)).statusCode).toBe(200);
    });

    it("refuses an MFA token once the user's sessions were ended after it was issued", async () => {
      const user = await enrolledUser(app);
      const token = await mfaToken(user.email);
      const out = await app.http.inject({
        method: "POST",
        url: "/auth/logout/all",
        headers: bearer(user.accessToken),
      });
      expect(out.statusCode).toBe(204);
      const late = await finishMfa(app, token, totpAt(user.secret, app.clock.now()));
      expect(late.statusCode).toBe(401);
      expect(late.json()).toMatchObject({ code: "invalid_token" });
      const fresh = await finishMfa(app, await mfaToken(user.email), user.backupCodes[0] as string);
      expect(fresh.statusCode).toBe(200);
    });

    it("lets an MFA token expire after 10 minutes", async () => {
      const user = await enrolledUser(app);
      const token = await mfaToken(user.email);
      app.clock.advance(11 * 60_000);
      const res = await finishMfa(app, token, totpAt(user.secret, app.clock.now()));
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: "token_expired" });
    });

    it("clears the lk_mfa cookie once its token is refused for good, not after a wrong code", async () => {
      const user = await enrolledUser(app);
      const viaCookie = (url: string, token: string, body: unknown, headers = {}) =>
        app.http.inject({
          method: "POST",
          url,
          cookies: { lk_mfa: token },
          headers: { origin: ORIGIN, "content-type": "application/json", ...headers },
          payload: JSON.stringify(body),
        });
      const mfaCookieOf = (res: Awaited<ReturnType<typeof viaCookie>>) =>
        res.cookies.find((c) => c.name === "lk_mfa");
      const cleared = { value: "", maxAge: 0, path: "/auth", sameSite: "Lax", httpOnly: true };

      const token = await mfaToken(user.email);
      const typo = await viaCookie("/auth/login/mfa", token, { code: "zzzzzzzz" });
      expect(typo.json()).toMatchObject({ status: 400, code: "invalid_code" });
      expect(mfaCookieOf(typo)).toBeUndefined();
      const done = await viaCookie("/auth/login/mfa", token, { code: user.backupCodes[0] });
      expect(done.statusCode).toBe(200);
      expect(mfaCookieOf(done)).toMatchObject(cleared);
      // A used token reads like one a concurrent attempt holds, which may come back: the
      // success that used it cleared the cookie already.
      const used = await viaCookie("/auth/login/mfa", token, { code: user.backupCodes[1] });
      expect(used.json()).toMatchObject({ status: 401, code: "invalid_token" });
      expect(mfaCookieOf(used)).toBeUndefined();

      // A refused header token leaves the cookie's own (live) token alone.
      const live = await mfaToken(user.email);
      const other = await viaCookie(
        "/auth/login/mfa",
        live,
        { code: "zzzzzzzz" },
        {
          "x-mfa-token": token,
        },
      );
      expect(other.json()).toMatchObject({ status: 401, code: "invalid_token" });
      expect(mfaCookieOf(other)).toBeUndefined();

      app.clock.advance(11 * 60_000);
      const expired = await viaCookie("/auth/login/mfa", live, { code: user.backupCodes[1] });
      expect(expired.json()).toMatchObject({ status: 401, code: "token_expired" });
      expect(mfaCookieOf(expired)).toMatchObject(cleared);
      const options = await viaCookie("/auth/login/mfa/webauthn/options", live, {});
      expect(options.json()).toMatchObject({ status: 401, code: "token_expired" });
      expect(mfaCookieOf(options)).toMatchObject(cleared);
    });

    it("keeps the lk_mfa cookie when a concurrent attempt held the token: a double submit of a typo", async () => {
      // Regression: the second of two submits found the token claimed by the first (in
      // flight) and answered 401, clearing the cookie; the first gave the claim back on its
      // wrong code, so the token was still good, but the browser had dropped it.
      const user = await enrolledUser(app);
      const token = await mfaToken(user.email);
      const submit = (code: string) =>
        app.http.inject({
          method: "POST",
          url: "/auth/login/mfa",
          cookies: { lk_mfa: token },
          headers: { origin: ORIGIN, "content-type": "application/json" },
          payload: JSON.stringify({ code }),
        });
      // Wrong TOTP codes: a lookup slow enough for the attempts to overlap.
      const wrong = totpAt(user.secret, app.clock.now()) === "000000" ? "111111" : "000000";
      const answers = await Promise.all([submit(wrong), submit(wrong), submit(wrong)]);
      expect(answers.some((r) => r.statusCode === 400)).toBe(true);
      for (const res of answers) {
        expect(res.cookies.find((c) => c.name === "lk_mfa")).toBeUndefined();
      }
      expect((await submit(user.backupCodes[0] as string)).statusCode).toBe(200);
    });

    it("limits wrong codes per user: the 6th attempt is refused even with the right code", async () => {
      const user = await enrolledUser(app);
      const token = await mfaToken(user.email);
      const right = totpAt(user.secret, app.clock.now());
      const wrong = right === "000000" ? "111111" : "000000";
      // Codes of any shape are wrong codes and count alike.
      for (const code of [wrong, "abc", "1", wrong, "x".repeat(40)]) {
        const res = await finishMfa(app, token, code);
        expect(res.statusCode).toBe(400);
        expect(res.json()).toMatchObject({ code: "invalid_code" });
      }
      const limited = await finishMfa(app, token, right);
      expect(limited.statusCode).toBe(429);
      expect(limited.json()).toMatchObject({ code: "rate_limited" });
      expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
      // A fresh MFA token does not reset the count.
      const fresh = await finishMfa(app, await mfaToken(user.email), right);
      expect(fresh.statusCode).toBe(429);
    });

    // Regression: the count was one per user for sign-in and step-up alike, so five wrong
    // codes from anyone with the password, repeated each window, kept the owner from
    // signing in, stepping up, and so from changing the password they had lost.
    it("wrong codes from a stranger with the password lock out neither the owner's address nor their step-up", async () => {
      const user = await enrolledUser(app); // its session is from 127.0.0.1
      const stranger = async (code: string, remoteAddress = "192.0.2.66") => {
        const login = await app.http.inject({
          method: "POST",
          url: "/auth/login",
          remoteAddress,
          ...json({ identifier: user.email, password: PASSWORD }),
        });
        return app.http.inject({
          method: "POST",
          url: "/auth/login/mfa",
          remoteAddress,
          headers: {
            "x-mfa-token": login.json<MfaPending>().mfaToken,
            "content-type": "application/json",
          },
          payload: JSON.stringify({ code }),
        });
      };
      const right = () => totpAt(user.secret, app.clock.now());
      const wrong = () => (right() === "000000" ? "111111" : "000000");
      for (let i = 0; i < 5; i++) expect((await stranger(wrong())).statusCode).toBe(400);
      // Strangers share one count, bounded as before, wherever they come from.
      expect((await stranger(right(), "192.0.2.67")).statusCode).toBe(429);
      const stepUp = await post("/auth/step-up", user.accessToken, { password: PASSWORD });
      expect(stepUp.statusCode).toBe(200);
      app.clock.advance(STEP_MS);
      const owner = await finishMfa(app, await mfaToken(user.email), right());
      expect(owner.statusCode).toBe(200);
      // Neither success cleared the strangers' count.
      app.clock.advance(STEP_MS);
      expect((await stranger(right())).statusCode).toBe(429);
    });

    it("carries rememberMe from the password step into the session", async () => {
      const user = await enrolledUser(app);
      const login = await app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: user.email, password: PASSWORD, rememberMe: true }),
      });
      const done = await finishMfa(
        app,
        login.json<MfaPending>().mfaToken,
        totpAt(user.secret, app.clock.now()),
      );
      expect(done.json<{ sessionExpiresIn: number }>().sessionExpiresIn).toBe(90 * 86_400);
    });

    it("sets no cookie in body delivery mode and no token in the body in cookie mode", async () => {
      for (const delivery of ["body", "cookie"] as const) {
        const other = await startTestApp({ tokens: { delivery } });
        try {
          const email = `d-${delivery}@example.com`;
          const registered = await other.http.inject({
            method: "POST",
            url: "/auth/register",
            ...json({ email, password: PASSWORD }),
          });
          const accessToken =
            registered.json<{ accessToken?: string }>().accessToken ??
            (registered.cookies.find((c) => c.name === "lk_access")?.value as string);
          const user = { accessToken };
          const setup = await other.http.inject({
            method: "POST",
            url: "/mfa/totp/setup",
            headers: bearer(user.accessToken),
          });
          const { secret } = setup.json<{ secret: string }>();
          await other.http.inject({
            method: "POST",
            url: "/mfa/totp/enable",
            headers: { ...bearer(user.accessToken), "content-type": "application/json" },
            payload: JSON.stringify({ code: totpAt(secret, other.clock.now()) }),
          });
          const login = await passwordLogin(other, email);
          const body = login.json<Record<string, unknown>>();
          if (delivery === "body") {
            expect(login.cookies).toHaveLength(0);
            expect(body.mfaToken).toEqual(expect.any(String));
          } else {
            expect(login.cookies.map((c) => c.name)).toEqual(["lk_mfa"]);
            expect(body).toEqual({ mfaRequired: true, expiresIn: 600 });
          }
        } finally {
          await other.close();
        }
      }
    });
  });
});
