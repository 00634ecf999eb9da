import { assertAccountUsable } from "../domain/account-policy.js";
import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import type { Session } from "../domain/session.js";
import type { ClientInfo, Services } from "../services.js";
import type { SessionContext } from "../store/sessions.js";
import { audit } from "./audit.js";
import { type IssuedTokens, issueForSession } from "./issue-tokens.js";

/**
 * Rotation per DESIGN.md: one compare-and-set; a loser inside the grace window
 * gets the winner's successor; an older token is reuse and ends the session.
 */
export async function refresh(
  svc: Services,
  presented: string,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const { context, sessionId, generation } = await namedSession(svc, presented);
  const now = svc.clock.now();
  const { user } = context;
  // Policies first: refusing after the rotation would strand the client's new token.
  if (context.session.revokedAt === null) assertMayContinue(svc, context, client);

  const successor = svc.refreshTokens.issue(sessionId, generation + 1);
  const rotated = await svc.store.sessions.rotate(
    sessionId,
    sha256(presented),
    sha256(successor),
    now,
  );
  if (rotated.ok) {
    svc.metrics.refreshes.inc({ result: "rotated" });
    return issueForSession(svc, user, rotated.session, successor);
  }

  const session = rotated.session;
  if (!session) throw new AuthError("invalid_token", "The refresh token is not valid");
  if (session.revokedAt !== null)
    throw new AuthError("session_revoked", "The session has been revoked");
  if (session.absoluteExpiresAt <= now)
    throw new AuthError("token_expired", "The session has ended");
  if (inGraceWindow(svc, session, generation, now)) {
    svc.metrics.refreshes.inc({ result: "grace" });
    return issueForSession(
      svc,
      user,
      session,
      svc.refreshTokens.issue(sessionId, session.generation),
    );
  }
  if (generation < session.generation) {
    await svc.sessions.revoke(sessionId, "refresh_token_reused");
    audit(
      svc,
      { type: "refresh_token_reused", userId: session.userId, sessionId, detail: { generation } },
      client,
    );
    throw new AuthError(
      "refresh_token_reused",
      "This refresh token was already used; the session is revoked",
    );
  }
  throw new AuthError("invalid_token", "The refresh token is not valid");
}

/**
 * The session a refresh token names (its MAC checked) and the generation it was issued
 * for, whatever that session's state; refresh and unlock judge it from there.
 */
export async function namedSession(
  svc: Services,
  refreshToken: string,
): Promise<{ context: SessionContext; sessionId: string; generation: number }> {
  // Made only when thrown: an Error captures its stack as it is built, 4 % of a refresh's
  // main-thread time when this one was built on every call (perf, bench/RESULTS.md).
  const invalid = () => new AuthError("invalid_token", "The refresh token is not valid");
  const parsed = svc.refreshTokens.parse(refreshToken);
  if (!parsed) throw invalid();
  const { sessionId, generation } = parsed;
  const context = svc.sessions.cached(sessionId) ?? (await svc.sessions.load(sessionId));
  if (!context) throw invalid();
  return { context, sessionId, generation };
}

/** Two tabs refreshing the same token at once: the one that lost the race is not a thief. */
export function inGraceWindow(
  svc: Services,
  session: Session,
  generation: number,
  now: number,
): boolean {
  return (
    generation === session.generation - 1 &&
    session.rotatedAt !== null &&
    now - session.rotatedAt < svc.config.tokens.refreshGraceSeconds * 1000
  );
}

/** A live session may refresh only while its user could use it: enabled, from an allowed IP, unlocked. */
function assertMayContinue(svc: Services, context: SessionContext, client: ClientInfo): void {
  assertAccountUsable(context.user, client.ip);
  if (svc.sessions.lockIfIdle(context)) {
    throw new AuthError("screen_locked", "The session is locked; unlock it with POST /auth/unlock");
  }
}
