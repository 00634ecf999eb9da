import { AuthError } from "../domain/errors.js";
import type { Session } from "../domain/session.js";
import type { Services } from "../services.js";
import type { Store } from "../store/index.js";

/**
 * Inside a transaction that sets something up for a user on behalf of one of their
 * sessions (an API token, a passkey, a linked identity, a profile change): holds the
 * user's row (Store.lockUser) and answers the session as committed, while it is live.
 *
 * The guard checked the session before the request's transaction began; a claim of the
 * account (claimUnprovenAccount), a password reset or "log out everywhere" may have
 * committed since, or be holding the user's row right now (PostgreSQL reads do not wait
 * for it). Without this, what the ended session asked for landed after the revocation
 * and outlived it: a squatter's API token or new email address on the account its owner
 * had just claimed.
 */
export async function holdLiveSession(
  svc: Services,
  tx: Store,
  userId: string,
  sessionId: string,
): Promise<Session> {
  await tx.lockUser(userId);
  return liveSession(svc, tx, userId, sessionId);
}

/**
 * The session as committed, while live; else 401 `session_revoked`. Call it with the
 * user's row held (as every revocation of all sessions takes it first), so that no
 * such revocation can commit between this read and the caller's writes.
 */
export async function liveSession(
  svc: Services,
  tx: Store,
  userId: string,
  sessionId: string,
): Promise<Session> {
  const session = await tx.sessions.findById(sessionId);
  if (
    !session ||
    session.userId !== userId ||
    session.revokedAt !== null ||
    session.absoluteExpiresAt <= svc.clock.now()
  ) {
    throw new AuthError("session_revoked", "The session has been revoked");
  }
  return session;
}
