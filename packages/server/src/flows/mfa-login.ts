import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import type { PurposeClaims } from "../domain/purpose-token.js";
import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { type IssuedTokens, startSession } from "./issue-tokens.js";
import { msUntilUnusable, signPurpose, verifyPurpose } from "./purpose-tokens.js";
import { acceptSecondFactor, limitSecondFactor } from "./second-factor.js";

/** How long a user has to type the second factor after the first one. */
export const MFA_TOKEN_TTL_S = 600;

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
  const mfaToken = await signPurpose(svc, "mfa", { sub: user.id, ...first }, MFA_TOKEN_TTL_S);
  return { mfaToken, expiresIn: MFA_TOKEN_TTL_S };
}

/**
 * POST /auth/login/mfa: a TOTP or backup code for the user the MFA token names.
 * The token works once (its jti is claimed on success), and wrong codes count per user.
 */
export async function completeMfaLogin(
  svc: Services,
  mfaToken: string,
  code: string,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const claims = await mfaClaims(svc, mfaToken);
  const user = await svc.store.users.findById(claims.sub);
  if (!user?.mfaEnabled) throw new AuthError("invalid_token", "The MFA token is not valid");
  assertAccountUsable(user, client.ip);
  const limit = await limitSecondFactor(svc, user.id, client);
  const method = await acceptSecondFactor(svc, user.id, code);
  if (!method) {
    audit(svc, { type: "mfa_failed", userId: user.id }, client);
    throw new AuthError("invalid_code", "The code is not valid");
  }
  const now = svc.clock.now();
  if (!(await svc.replay.claim(`mfa-token:${claims.jti}`, msUntilUnusable(svc, claims), now))) {
    throw new AuthError("invalid_token", "The MFA token was already used");
  }
  await limit.passed();
  if (method === "backup_code") audit(svc, { type: "backup_code_used", userId: user.id }, client);
  const tokens = await startSession(svc, user, client, {
    amr: [...claims.amr, "otp"],
    rememberMe: claims.rememberMe ?? false,
  });
  audit(
    svc,
    { type: "login_succeeded", userId: user.id, sessionId: tokens.sessionId, detail: { method } },
    client,
  );
  return tokens;
}

async function mfaClaims(svc: Services, token: string): Promise<PurposeClaims> {
  const result = await verifyPurpose(svc, "mfa", token);
  if (result.ok) return result.claims;
  if (result.reason === "expired") {
    throw new AuthError("token_expired", "The MFA token has expired; sign in again");
  }
  throw new AuthError("invalid_token", "The MFA token is not valid");
}
