import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import { assertPasswordAcceptable } from "../domain/password-policy.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { type IssuedTokens, issueForSession } from "./issue-tokens.js";
import { liveSession } from "./live-session.js";
import { noticePasswordChanged } from "./notices.js";
import { limitSecondFactor } from "./second-factor.js";

const incorrect = () => new AuthError("invalid_credentials", "The current password is incorrect");

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
  // Wrong current passwords count in the per-user limit of step-up and unlock: a
  // session with a step-up grant must not become a way to guess the password.
  const limit = await limitSecondFactor(svc, { kind: "in-session", userId: auth.user.id }, client);
  const user = await svc.store.users.findById(auth.user.id);
  const ok = user?.passwordHash
    ? await svc.hasher.verify(user.passwordHash, input.currentPassword)
    : await svc.hasher.verifyDummy(input.currentPassword);
  if (!user?.passwordHash || !ok) {
    audit(
      svc,
      { type: "step_up_failed", userId: auth.user.id, sessionId: auth.session.id },
      client,
    );
    throw incorrect();
  }
  await limit.passed();
  const verifiedHash = user.passwordHash;
  const passwordHash = await svc.hasher.hash(input.newPassword); // slow: before the transaction
  const now = svc.clock.now();
  const { session, refreshToken } = await svc.store.transaction(async (tx) => {
    // Compare-and-set, and first (the user's row before the session's, as a reset locks
    // them): of changes racing from the same current password, one wins, and the others
    // proved a password that is no longer current.
    if (!(await tx.users.replacePasswordHash(user.id, verifiedHash, passwordHash, now))) {
      throw incorrect();
    }
    const current = await liveSession(svc, tx, user.id, auth.session.id);
    const refreshToken = svc.refreshTokens.issue(current.id, current.generation + 1);
    const session = await tx.sessions.advance(
      current.id,
      current.generation,
      sha256(refreshToken),
      now,
    );
    if (!session) throw new AuthError("conflict", "The session was refreshed meanwhile; retry");
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
