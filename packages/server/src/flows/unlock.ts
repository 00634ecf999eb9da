import { AuthError } from "../domain/errors.js";
import type { Session } from "../domain/session.js";
import type { ClientInfo, Services } from "../services.js";
import type { Authenticated } from "./authenticate.js";
import { type IssuedTokens, issueForSession } from "./issue-tokens.js";
import { type ReauthInput, reauthenticate } from "./step-up.js";

/**
 * Lifts this session's screen lock once the user proves presence again (password
 * or TOTP, rate limited like step-up). Access tokens from before the lock was lifted stay
 * refused; the answer carries a fresh one and the session's current refresh token
 * (derived, not stored: see refresh-token.ts).
 */
export async function unlock(
  svc: Services,
  auth: Authenticated,
  input: ReauthInput,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const { user } = auth;
  await reauthenticate(svc, auth, input, client);
  // Read fresh: the cached copy may be a lock or a refresh (on any node) behind; the
  // guard recorded an idle lock on the copy it let in.
  let session = await liveSession(svc, auth.session.id);
  // Only a locked session has tokens to void; unlocking one that is not changes nothing.
  if (auth.session.lockedAt !== null || session.lockedAt !== null) {
    await svc.sessions.unlock(session.id);
    session = await liveSession(svc, session.id);
  }
  return issueForSession(
    svc,
    user,
    session,
    svc.refreshTokens.issue(session.id, session.generation),
  );
}

async function liveSession(svc: Services, id: string): Promise<Session> {
  const session = await svc.store.sessions.findById(id);
  if (!session || session.revokedAt !== null) {
    throw new AuthError("session_revoked", "The session has been revoked");
  }
  return session;
}
