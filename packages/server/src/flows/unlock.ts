import { AuthError } from "../domain/errors.js";
import type { ClientInfo, Services } from "../services.js";
import type { Authenticated } from "./authenticate.js";
import { type IssuedTokens, issueForSession } from "./issue-tokens.js";
import { type ReauthInput, reauthenticate } from "./step-up.js";

/**
 * Lifts this session's screen lock once the user proves presence again (password
 * or TOTP, rate limited like step-up). Access tokens from before stay refused; the
 * answer carries a fresh one and the session's current refresh token (derived, not
 * stored: see refresh-token.ts).
 */
export async function unlock(
  svc: Services,
  auth: Authenticated,
  input: ReauthInput,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const { user } = auth;
  await reauthenticate(svc, auth, input, client);
  await svc.sessions.unlock(auth.session.id);
  // The generation is read fresh: the cached one may be a refresh (on any node) behind.
  const session = await svc.store.sessions.findById(auth.session.id);
  if (!session || session.revokedAt !== null) {
    throw new AuthError("session_revoked", "The session has been revoked");
  }
  return issueForSession(
    svc,
    user,
    session,
    svc.refreshTokens.issue(session.id, session.generation),
  );
}
