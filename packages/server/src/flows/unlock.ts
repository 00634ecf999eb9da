import type { AccessClaims } from "../domain/access-token.js";
import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import type { Session } from "../domain/session.js";
import type { ClientInfo, Services } from "../services.js";
import type { SessionContext } from "../store/sessions.js";
import { type IssuedTokens, issueForSession } from "./issue-tokens.js";
import { inGraceWindow, namedSession } from "./refresh.js";
import { type ReauthInput, reauthenticate } from "./step-up.js";

/**
 * Lifts this session's screen lock once the user proves presence again (password
 * or TOTP, rate limited like step-up). Access tokens from before the lock was lifted stay
 * refused; the answer carries a fresh one and the session's current refresh token
 * (derived, not stored: see refresh-token.ts).
 */
export async function unlock(
  svc: Services,
  auth: SessionContext & { claims?: AccessClaims },
  input: ReauthInput,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const { user } = auth;
  // A credential the lock outlived (an expired access token, or the refresh cookie) can
  // unlock for as long as the session lasts, not the token's 15 minutes: on an account
  // with MFA it takes the second factor then, as signing in again would.
  const outlived = !auth.claims || auth.claims.exp * 1000 <= svc.clock.now();
  if (outlived && user.mfaEnabled && input.code === undefined) {
    throw new AuthError(
      "mfa_required",
      "The access token has expired: unlock with a code from the authenticator app or a backup code",
    );
  }
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

/**
 * The locked session a browser unlocks once its lk_access cookie aged out with the token
 * (the cookie's Max-Age is the token's): its lk_refresh cookie (Path=/auth) names it.
 * Only the session's current refresh token, and only while the session is locked; else
 * the browser should refresh. Nothing rotates: the unlock answers with new tokens.
 * A refusal that refresh would also give for good (a token of an ended session, or one
 * rotated away) is a plain 401, and the route clears the cookies as refresh does; the
 * others are `transient`: the cookie may still serve, so it is kept.
 */
export async function lockedSessionOf(
  svc: Services,
  refreshToken: string,
  ip: string,
): Promise<SessionContext> {
  const { context, generation } = await namedSession(svc, refreshToken);
  const { session } = context;
  const now = svc.clock.now();
  // The current token only: one rotated away unlocks nothing (nor counts as reuse here).
  if (session.generation !== generation) {
    // Not for good when newer than this copy of the session (the cache may be a rotation
    // behind), nor within the grace window (a concurrent refresh set its successor).
    const transient =
      generation > session.generation || inGraceWindow(svc, session, generation, now);
    throw new AuthError("invalid_token", "The refresh token is not valid", { transient });
  }
  if (session.revokedAt !== null || session.absoluteExpiresAt <= now) {
    throw new AuthError("session_revoked", "The session has been revoked");
  }
  assertAccountUsable(context.user, ip);
  if (!svc.sessions.lockIfIdle(context)) {
    // The token is good, for refresh: its cookie stays.
    throw new AuthError("unauthenticated", "An access token is required; refresh to get one", {
      transient: true,
    });
  }
  return context;
}
