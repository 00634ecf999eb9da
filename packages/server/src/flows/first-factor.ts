import { AuthError } from "../domain/errors.js";
import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { startSession } from "./issue-tokens.js";
import type { LoginResult } from "./login.js";
import { issueMfaToken } from "./mfa-login.js";

/** What a way in (password, magic link, passkey, provider) proved. */
export interface FirstFactor {
  amr: string[];
  rememberMe: boolean;
  /** Recorded with the sign-in event, e.g. `{ method: "passkey" }`. */
  detail?: Record<string, unknown>;
  /** A user-verifying passkey is two factors at once. */
  satisfiesMfa?: boolean;
}

/** Every way in refuses an unproven address while verification is required. */
export function assertEmailVerifiedIfRequired(svc: Services, user: User): void {
  if (svc.config.emailVerificationRequired && user.email && !user.emailVerified) {
    throw new AuthError(
      "email_not_verified",
      "Verify your email address first; POST /auth/email/resend sends a new link",
    );
  }
}

/**
 * The first factor passed: a session, or (MFA on) a token to finish with POST
 * /auth/login/mfa. No session exists until the second factor is in (STYLE.md rule 7).
 */
export async function completeFirstFactor(
  svc: Services,
  user: User,
  client: ClientInfo,
  factor: FirstFactor,
): Promise<LoginResult> {
  const { amr, rememberMe } = factor;
  if (user.mfaEnabled && !factor.satisfiesMfa) {
    svc.metrics.logins.inc({ outcome: "mfa_required" });
    return { kind: "mfa_required", ...(await issueMfaToken(svc, user, { amr, rememberMe })) };
  }
  const tokens = await startSession(svc, user, client, { amr, rememberMe });
  audit(
    svc,
    {
      type: "login_succeeded",
      userId: user.id,
      sessionId: tokens.sessionId,
      ...(factor.detail ? { detail: factor.detail } : {}),
    },
    client,
  );
  return { kind: "tokens", tokens };
}
