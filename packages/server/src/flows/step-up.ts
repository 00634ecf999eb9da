import type { PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/server";
import { AuthError } from "../domain/errors.js";
import { PURPOSE_TTL_S } from "../domain/purpose-token.js";
import type { ClientInfo, Services } from "../services.js";
import type { SessionContext } from "../store/sessions.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { signPurpose, verifyPurpose } from "./purpose-tokens.js";
import { acceptSecondFactor, limitSecondFactor } from "./second-factor.js";
import {
  type CeremonyStart,
  type PasskeyAnswer,
  passkeyFailed,
  requestOptions,
} from "./webauthn-assert.js";
import { acceptPasskey } from "./webauthn-factor.js";

/** A fresh proof of presence opens sensitive actions for this long (reusable meanwhile). */
export const STEP_UP_TTL_S = PURPOSE_TTL_S.step_up;

/** Exactly one of them (the route schema enforces it); a passkey only for step-up. */
export interface ReauthInput {
  password?: string;
  code?: string;
  webauthn?: PasskeyAnswer;
}

export interface StepUpGrant {
  stepUpToken: string;
  expiresIn: number;
}

/**
 * POST /auth/step-up: the password, a TOTP code or a passkey again, for a token bound to this
 * session and user. Failures count per user (see reauthenticate).
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
 * The signed-in user proves presence again with the password, a TOTP or backup code (step-up,
 * unlocking a screen lock). Failures count per user, so a stolen access token cannot be
 * used to guess the password or a code; apart from sign-in's count (AttemptBucket), which
 * the password alone can fill. Returns the RFC 8176 method.
 */
export async function reauthenticate(
  svc: Services,
  auth: SessionContext,
  input: ReauthInput,
  client: ClientInfo,
): Promise<"pwd" | "otp" | "hwk"> {
  const userId = auth.user.id;
  const limit = await limitSecondFactor(svc, { kind: "in-session", userId }, client);
  const method = await prove(svc, auth, input);
  if (typeof method !== "string") {
    audit(svc, { type: "step_up_failed", userId, sessionId: auth.session.id }, client);
    throw method;
  }
  await limit.passed();
  if (method === "backup_code") audit(svc, { type: "backup_code_used", userId }, client);
  return method === "backup_code" ? "otp" : method;
}

/** The method proven (RFC 8176), or the error to answer. Reads the user fresh: hashes change. */
async function prove(svc: Services, auth: SessionContext, input: ReauthInput) {
  const userId = auth.user.id;
  if (input.webauthn !== undefined) {
    // Possession of a registered passkey proves presence as well as the password does.
    const result = await acceptPasskey(svc, userId, "step_up", auth.session.id, input.webauthn);
    return result.ok ? ("hwk" as const) : passkeyFailed(result.reason);
  }
  const user = await svc.store.users.findById(userId);
  if (input.code !== undefined) {
    // As at sign-in: a TOTP code, or a backup code (used up), for one who lost the device.
    const factor = user?.mfaEnabled ? await acceptSecondFactor(svc, userId, input.code) : undefined;
    if (factor === undefined) return new AuthError("invalid_code", "The code is not valid");
    return factor === "totp" ? ("otp" as const) : factor;
  }
  const password = input.password ?? "";
  const ok = user?.passwordHash
    ? await svc.hasher.verify(user.passwordHash, password)
    : await svc.hasher.verifyDummy(password);
  if (ok) return "pwd" as const;
  return new AuthError("invalid_credentials", "The password is incorrect");
}

/** POST /auth/step-up/webauthn/options: request options for the user's passkeys, bound to this session. */
export async function stepUpPasskeyOptions(
  svc: Services,
  auth: Authenticated,
): Promise<CeremonyStart<PublicKeyCredentialRequestOptionsJSON>> {
  const passkeys = await svc.store.webauthn.listForUser(auth.user.id);
  if (passkeys.length === 0) throw new AuthError("conflict", "The account has no passkey");
  return requestOptions(svc, passkeys, {
    purpose: "step_up",
    userId: auth.user.id,
    boundTo: auth.session.id,
  });
}

/**
 * True when the request may act as stepped up: `token` is a live step-up grant of exactly
 * this session and user. Or, without such a grant, the account has nothing to step up with (no
 * password, TOTP or passkey: a guest, a provider-only account) and its session began
 * within the step-up lifetime: signing in again is its step-up, as if a grant had been
 * fetched at sign-in. Otherwise such an account could never delete itself or link a provider.
 */
export async function hasSteppedUp(
  svc: Services,
  auth: Authenticated,
  token: string | undefined,
): Promise<boolean> {
  if (token !== undefined) {
    const result = await verifyPurpose(svc, "step_up", token);
    if (result.ok && result.claims.sid === auth.session.id && result.claims.sub === auth.user.id) {
      return true;
    }
  }
  // Also past a token that is not this session's: an lk_step_up cookie another session left
  // in the browser (logout keeps it) must not lock out an account that cannot step up.
  if (svc.clock.now() - auth.session.createdAt >= STEP_UP_TTL_S * 1000) return false;
  return !(await hasStepUpMethod(svc, auth.user.id));
}

/** A password, TOTP or a passkey: something POST /auth/step-up can check. Read fresh. */
async function hasStepUpMethod(svc: Services, userId: string): Promise<boolean> {
  const user = await svc.store.users.findById(userId);
  if (user?.passwordHash || user?.mfaEnabled) return true;
  return (await svc.store.webauthn.listForUser(userId)).length > 0;
}
