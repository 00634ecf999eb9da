import type { PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/server";
import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import { PURPOSE_TTL_S, type PurposeClaims } from "../domain/purpose-token.js";
import type { User } from "../domain/user.js";
import { assertionAmr } from "../domain/webauthn.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { type IssuedTokens, startSession } from "./issue-tokens.js";
import { noticeSecondStepFailed } from "./notices.js";
import { msUntilUnusable, signPurpose, verifyPurpose } from "./purpose-tokens.js";
import { acceptSecondFactor, limitSecondFactor, type SecondFactor } from "./second-factor.js";
import {
  type CeremonyStart,
  type PasskeyAnswer,
  passkeyFailed,
  requestOptions,
} from "./webauthn-assert.js";
import { acceptPasskey } from "./webauthn-factor.js";

/** How long a user has to type the second factor after the first one. */
export const MFA_TOKEN_TTL_S = PURPOSE_TTL_S.mfa;

export interface MfaPending {
  mfaToken: string;
  expiresIn: number;
}

/** The first factor passed: no session yet, only a token naming the user and what they proved. */
export async function issueMfaToken(
  svc: Services,
  user: User,
  first: { amr: string[]; rememberMe: boolean },
): Promise<MfaPending> {
  const mfaToken = await signPurpose(
    svc,
    "mfa",
    { sub: user.id, ...first, epoch: user.sessionEpoch },
    MFA_TOKEN_TTL_S,
  );
  return { mfaToken, expiresIn: MFA_TOKEN_TTL_S };
}

/** Exactly one of them (the route schema enforces it). */
export type MfaAnswer = { code: string } | { webauthn: PasskeyAnswer };

/**
 * POST /auth/login/mfa: a TOTP or backup code, or a passkey, for the user the MFA token
 * names. The token works once (its jti is claimed first, and given back when the factor is
 * wrong), and failures count per account, the addresses it signed in from apart.
 */
export async function completeMfaLogin(
  svc: Services,
  mfaToken: string,
  answer: MfaAnswer,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const { claims, user } = await pendingSignIn(svc, mfaToken);
  assertAccountUsable(user, client.ip);
  const limit = await limitSecondFactor(
    svc,
    { kind: "sign-in", userId: user.id, ip: client.ip },
    client,
  );
  // The token is claimed before the factor is checked, so a used token never spends a
  // backup code or a TOTP step; a wrong factor gives the claim back (a typo keeps the token).
  const claim = `mfa-token:${claims.jti}`;
  if (!(await svc.replay.claim(claim, msUntilUnusable(svc, claims), svc.clock.now()))) {
    // Or is being used by a concurrent attempt, which gives it back if its factor is wrong.
    throw new AuthError("invalid_token", "The MFA token was already used", { transient: true });
  }
  // A failed give-back (Redis away) only costs the user this token; the answer stands.
  const giveBack = () =>
    svc.replay.release(claim).catch((err: unknown) => svc.log.warn({ err }, "MFA claim kept"));
  const proof = await acceptFactor(svc, user.id, claims, answer).catch(async (err: unknown) => {
    await giveBack();
    throw err;
  });
  if (!proof.ok) {
    await giveBack();
    audit(svc, { type: "mfa_failed", userId: user.id }, client);
    const pending = { jti: claims.jti, amr: claims.amr, ttlMs: msUntilUnusable(svc, claims) };
    noticeSecondStepFailed(svc, user, pending, client);
    throw proof.error;
  }
  const { method } = proof;
  await limit.passed();
  if (method === "backup_code") audit(svc, { type: "backup_code_used", userId: user.id }, client);
  const tokens = await startSession(svc, user, client, {
    amr: [...new Set([...claims.amr, ...proof.amr])],
    rememberMe: claims.rememberMe ?? false,
    epoch: claims.epoch,
  });
  audit(
    svc,
    { type: "login_succeeded", userId: user.id, sessionId: tokens.sessionId, detail: { method } },
    client,
  );
  return tokens;
}

type Proof =
  | { ok: true; method: SecondFactor | "passkey"; amr: string[] }
  | { ok: false; error: AuthError };

function acceptFactor(
  svc: Services,
  userId: string,
  claims: PurposeClaims,
  answer: MfaAnswer,
): Promise<Proof> {
  return "webauthn" in answer
    ? acceptPasskeyFactor(svc, userId, claims, answer.webauthn)
    : acceptCodeFactor(svc, userId, answer.code);
}

async function acceptCodeFactor(svc: Services, userId: string, code: string): Promise<Proof> {
  const method = await acceptSecondFactor(svc, userId, code);
  if (!method) return { ok: false, error: new AuthError("invalid_code", "The code is not valid") };
  return { ok: true, method, amr: ["otp"] };
}

/**
 * A passkey after the first factor. After a password any of the user's passkeys will do
 * (knowledge, then possession); after a passkey without UV only a user-verifying one
 * adds a factor, so the same possession is never counted twice.
 */
async function acceptPasskeyFactor(
  svc: Services,
  userId: string,
  claims: PurposeClaims,
  answer: PasskeyAnswer,
): Promise<Proof> {
  const result = await acceptPasskey(svc, userId, "mfa", claims.jti, answer);
  if (!result.ok) return { ok: false, error: passkeyFailed(result.reason) };
  if (firstFactorWasPasskey(claims) && !result.userVerified) {
    return { ok: false, error: passkeyFailed("A second passkey must verify the user (UV)") };
  }
  return { ok: true, method: "passkey", amr: assertionAmr(result.userVerified) };
}

/** POST /auth/login/mfa/webauthn/options: request options for the MFA token's user. */
export async function mfaPasskeyOptions(
  svc: Services,
  mfaToken: string,
): Promise<CeremonyStart<PublicKeyCredentialRequestOptionsJSON>> {
  const { claims } = await pendingSignIn(svc, mfaToken);
  const passkeys = await svc.store.webauthn.listForUser(claims.sub);
  if (passkeys.length === 0) {
    throw new AuthError("conflict", "The account has no passkey; use a TOTP or backup code");
  }
  // After a passkey without UV only a user-verifying one is accepted (acceptPasskeyFactor):
  // the browser is told so, and asks for the PIN or biometric it might otherwise skip.
  const uv = firstFactorWasPasskey(claims) ? "required" : "preferred";
  const binding = { purpose: "mfa", userId: claims.sub, boundTo: claims.jti } as const;
  return requestOptions(svc, passkeys, binding, uv);
}

const firstFactorWasPasskey = (claims: PurposeClaims) => claims.amr.includes("hwk");

/**
 * The MFA token's claims and user, while the sign-in it began can still finish: both the
 * options call and the answer check this, so no challenge is handed out for a dead one.
 */
async function pendingSignIn(
  svc: Services,
  mfaToken: string,
): Promise<{ claims: PurposeClaims; user: User }> {
  const claims = await mfaClaims(svc, mfaToken);
  const user = await svc.store.users.findById(claims.sub);
  if (!user?.mfaEnabled) throw new AuthError("invalid_token", "The MFA token is not valid");
  // The password (or link) it proved may be the one a reset has since replaced.
  if (claims.epoch !== user.sessionEpoch) {
    throw new AuthError("invalid_token", "The account's sessions were ended since; sign in again");
  }
  return { claims, user };
}

async function mfaClaims(svc: Services, token: string): Promise<PurposeClaims> {
  const result = await verifyPurpose(svc, "mfa", token);
  if (result.ok) return result.claims;
  if (result.reason === "expired") {
    throw new AuthError("token_expired", "The MFA token has expired; sign in again");
  }
  throw new AuthError("invalid_token", "The MFA token is not valid");
}
