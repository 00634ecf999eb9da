import { AuthError } from "../domain/errors.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { signPurpose, verifyPurpose } from "./purpose-tokens.js";
import { acceptTotp, limitSecondFactor } from "./second-factor.js";

/** A fresh proof of presence opens sensitive actions for this long (reusable meanwhile). */
export const STEP_UP_TTL_S = 300;

/** Exactly one of them (the route schema enforces it). */
export interface ReauthInput {
  password?: string;
  code?: string;
}

export interface StepUpGrant {
  stepUpToken: string;
  expiresIn: number;
}

/**
 * POST /auth/step-up: the password or a TOTP code again, for a token bound to this
 * session and user. Failures count in the same per-user limit as MFA codes, so a
 * stolen access token cannot be used to guess either.
 */
export async function stepUp(
  svc: Services,
  auth: Authenticated,
  input: ReauthInput,
  client: ClientInfo,
): Promise<StepUpGrant> {
  const { session } = auth;
  const userId = auth.user.id;
  const method = await reauthenticate(svc, auth, input, client);
  const stepUpToken = await signPurpose(
    svc,
    "step_up",
    { sub: userId, sid: session.id, amr: [method] },
    STEP_UP_TTL_S,
  );
  audit(svc, { type: "step_up_succeeded", userId, sessionId: session.id }, client);
  return { stepUpToken, expiresIn: STEP_UP_TTL_S };
}

/**
 * The signed-in user proves presence again with the password or a TOTP code (step-up,
 * unlocking a screen lock). Failures count in the same per-user limit as MFA codes,
 * so a stolen access token cannot be used to guess either. Returns the RFC 8176 method.
 */
export async function reauthenticate(
  svc: Services,
  auth: Authenticated,
  input: ReauthInput,
  client: ClientInfo,
): Promise<"pwd" | "otp"> {
  const userId = auth.user.id;
  const limit = await limitSecondFactor(svc, userId, client);
  const method = await prove(svc, userId, input);
  if (typeof method !== "string") {
    audit(svc, { type: "step_up_failed", userId, sessionId: auth.session.id }, client);
    throw method;
  }
  await limit.passed();
  return method;
}

/** The method proven (RFC 8176), or the error to answer. Reads the user fresh: hashes change. */
async function prove(svc: Services, userId: string, input: ReauthInput) {
  const user = await svc.store.users.findById(userId);
  if (input.code !== undefined) {
    const secret = user?.mfaEnabled ? await svc.store.users.totpSecret(userId) : null;
    if (await acceptTotp(svc, userId, secret, input.code)) return "otp" as const;
    return new AuthError("invalid_code", "The code is not valid");
  }
  const password = input.password ?? "";
  const ok = user?.passwordHash
    ? await svc.hasher.verify(user.passwordHash, password)
    : await svc.hasher.verifyDummy(password);
  if (ok) return "pwd" as const;
  return new AuthError("invalid_credentials", "The password is incorrect");
}

/** True when the token is a live step-up grant of exactly this session and user. */
export async function hasSteppedUp(
  svc: Services,
  auth: Authenticated,
  token: string,
): Promise<boolean> {
  const result = await verifyPurpose(svc, "step_up", token);
  return result.ok && result.claims.sid === auth.session.id && result.claims.sub === auth.user.id;
}
