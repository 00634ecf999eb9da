import { Secret, TOTP } from "otpauth";
import { bearer, json, registerUser, type TestApp } from "./helpers.js";

export const PASSWORD = "correct horse battery";
export const ORIGIN = "http://latchkey.test";
export const STEP_MS = 30_000;

/** The code an authenticator app shows at `ms` (RFC 6238, SHA-1, 6 digits, 30 s). */
export const totpAt = (secret: string, ms: number) =>
  TOTP.generate({
    secret: Secret.fromBase32(secret),
    algorithm: "SHA1",
    digits: 6,
    period: 30,
    timestamp: ms,
  });

export interface Enrolled {
  email: string;
  userId: string;
  accessToken: string;
  refreshToken: string;
  secret: string;
  backupCodes: string[];
}

/** A registered user with TOTP on; the clock is moved one step on so the next code is fresh. */
export async function enrolledUser(app: TestApp): Promise<Enrolled> {
  const email = `mfa-${Math.random().toString(36).slice(2, 10)}@example.com`;
  const user = await registerUser(app, { email, password: PASSWORD });
  const setup = await app.http.inject({
    method: "POST",
    url: "/mfa/totp/setup",
    headers: bearer(user.accessToken),
  });
  if (setup.statusCode !== 200) throw new Error(`setup failed: ${setup.body}`);
  const { secret } = setup.json<{ secret: string }>();
  const enable = await app.http.inject({
    method: "POST",
    url: "/mfa/totp/enable",
    headers: { ...bearer(user.accessToken), "content-type": "application/json" },
    payload: JSON.stringify({ code: totpAt(secret, app.clock.now()) }),
  });
  if (enable.statusCode !== 200) throw new Error(`enable failed: ${enable.body}`);
  app.clock.advance(STEP_MS);
  return {
    email,
    userId: user.user.id,
    accessToken: user.accessToken,
    refreshToken: user.refreshToken,
    secret,
    backupCodes: enable.json<{ backupCodes: string[] }>().backupCodes,
  };
}

export const passwordLogin = (app: TestApp, identifier: string, password = PASSWORD) =>
  app.http.inject({ method: "POST", url: "/auth/login", ...json({ identifier, password }) });

export const finishMfa = (app: TestApp, mfaToken: string, code: string) =>
  app.http.inject({
    method: "POST",
    url: "/auth/login/mfa",
    headers: { "x-mfa-token": mfaToken, "content-type": "application/json" },
    payload: JSON.stringify({ code }),
  });

/** Step-up with the password; returns the step-up token. */
export async function stepUpToken(app: TestApp, accessToken: string): Promise<string> {
  const res = await app.http.inject({
    method: "POST",
    url: "/auth/step-up",
    headers: { ...bearer(accessToken), "content-type": "application/json" },
    payload: JSON.stringify({ password: PASSWORD }),
  });
  if (res.statusCode !== 200) throw new Error(`step-up failed: ${res.body}`);
  return res.json<{ stepUpToken: string }>().stepUpToken;
}
