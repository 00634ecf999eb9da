import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import { assertPasswordAcceptable } from "../domain/password-policy.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { type IssuedTokens, issueForSession } from "./issue-tokens.js";
import { noticePasswordChanged } from "./notices.js";

export interface PasswordChangeInput {
  currentPassword: string;
  newPassword: string;
}

/**
 * POST /auth/password/change (behind step-up). One transaction: the new hash,
 * every other session revoked, and this session moved to a new refresh-token
 * generation (compare-and-set, as in refresh) whose access tokens alone are valid.
 * The session id survives, so the sessions list and a step-up grant stay coherent.
 */
export async function changePassword(
  svc: Services,
  auth: Authenticated,
  input: PasswordChangeInput,
  client: ClientInfo,
): Promise<IssuedTokens> {
  await assertPasswordAcceptable(input.newPassword, auth.user, svc.config.password, "newPassword");
  const user = await svc.store.users.findById(auth.user.id);
  const ok = user?.passwordHash
    ? await svc.hasher.verify(user.passwordHash, input.currentPassword)
    : await svc.hasher.verifyDummy(input.currentPassword);
  if (!user?.passwordHash || !ok) {
    throw new AuthError("invalid_credentials", "The current password is incorrect");
  }
  const passwordHash = await svc.hasher.hash(input.newPassword); // slow: before the transaction
  const now = svc.clock.now();
  const { session, refreshToken } = await svc.store.transaction(async (tx) => {
    const current = await tx.sessions.findById(auth.session.id);
    if (!current || current.revokedAt !== null) {
      throw new AuthError("session_revoked", "The session has been revoked");
    }
    const refreshToken = svc.refreshTokens.issue(current.id, current.generation + 1);
    const session = await tx.sessions.advance(
      current.id,
      current.generation,
      sha256(refreshToken),
      now,
    );
    if (!session) throw new AuthError("conflict", "The session was refreshed meanwhile; retry");
    await tx.users.setPasswordHash(user.id, passwordHash, now);
    // A reset link mailed before the change must not undo it.
    await tx.oneTimeTokens.voidForUser(user.id, ["reset_password", "magic_link"], now);
    await svc.sessions.revokeAllForUser(user.id, "password_changed", session.id, tx);
    return { session, refreshToken };
  });
  // Contexts re-cached while the transaction ran must not outlive it.
  svc.sessions.userChanged(user.id);
  audit(svc, { type: "password_changed", userId: user.id, sessionId: session.id }, client);
  noticePasswordChanged(svc, user, client);
  return issueForSession(svc, { ...user, passwordHash }, session, refreshToken);
}
