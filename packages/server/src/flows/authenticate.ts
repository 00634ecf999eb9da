import { decodeJwt } from "jose";
import { type AccessClaims, verifyAccessToken } from "../domain/access-token.js";
import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import { isUuid } from "../domain/ids.js";
import { predatesTokenCutoff } from "../domain/session.js";
import type { Services } from "../services.js";
import type { SessionContext } from "../store/sessions.js";
import { tokenSettings } from "./issue-tokens.js";

export interface Authenticated extends SessionContext {
  claims: AccessClaims;
}

/** What the request adds to the decision. */
export interface AccessCheck {
  ip: string;
  /** Only POST /auth/unlock may act on a screen-locked session. */
  allowLocked?: boolean;
}

/**
 * The hot path (DESIGN.md "The authenticated request path"): verified-token cache,
 * then the session by `sid` (cached briefly, evicted on revocation), then policies.
 */
export async function authenticate(
  svc: Services,
  token: string,
  check: AccessCheck,
): Promise<Authenticated> {
  const now = svc.clock.now();
  let claims: AccessClaims;
  try {
    claims = cachedClaims(svc, token, now) ?? (await verifyAndCache(svc, token, now));
  } catch (err) {
    if (check.allowLocked && err instanceof AuthError && err.code === "token_expired") {
      return admitOutlivedByLock(svc, token, check);
    }
    throw err;
  }
  const context = svc.sessions.cached(claims.sid) ?? (await svc.sessions.load(claims.sid));
  // A deleted account takes its sessions with it; say which of the two is gone.
  if (!context && !(await svc.store.users.findById(claims.sub))) {
    throw new AuthError("user_not_found", "The account no longer exists");
  }
  return admit(svc, context, claims, now, check);
}

/**
 * Unlock only: an access token that expired while its session was screen-locked. A lock
 * (explicit, or idle past screenLockMinutes) mostly outlasts a 15-minute token, and the
 * refresh answers 423 while locked, so refusing such a token left signing in again as the
 * only way on. It is taken only if it was valid at the session's last use, so it is the
 * token the locked device held, not an older one that leaked; and only while the session
 * is locked (else it stays token_expired: refresh it). The proof is unlock's own.
 */
async function admitOutlivedByLock(
  svc: Services,
  token: string,
  check: AccessCheck,
): Promise<Authenticated> {
  const expired = new AuthError("token_expired", "The access token has expired");
  // Unverified until the session's last use is known: only an id of ours is looked up,
  // so a forged token's sid never reaches the database.
  const sid = decodeJwt(token).sid; // the verification that expired read it already
  if (typeof sid !== "string" || !isUuid(sid)) throw expired;
  const context = svc.sessions.cached(sid) ?? (await svc.sessions.load(sid));
  if (!context) throw expired;
  const now = svc.clock.now();
  const lastUse = Math.min(now, context.session.lastSeenAt);
  const claims = await verifyAccessToken(token, svc.keys.findKey, tokenSettings(svc), lastUse);
  if (!svc.sessions.lockIfIdle(context)) throw expired;
  return admit(svc, context, claims, now, check);
}

/**
 * The same decision without any I/O, when both the token and its session are
 * cached (the common case); undefined means "ask `authenticate`". Letting the
 * guard stay synchronous saves the promise machinery on most requests.
 */
export function authenticateFromCache(
  svc: Services,
  token: string,
  check: AccessCheck,
): Authenticated | undefined {
  const now = svc.clock.now();
  const claims = cachedClaims(svc, token, now);
  const context = claims && svc.sessions.cached(claims.sid);
  return context && admit(svc, context, claims, now, check);
}

/** Guard clauses in the order a client can act on them: gone, disabled, not from here, locked. */
function admit(
  svc: Services,
  context: SessionContext | undefined,
  claims: AccessClaims,
  now: number,
  check: AccessCheck,
): Authenticated {
  if (!context || context.session.userId !== claims.sub) {
    throw new AuthError("session_revoked", "The session no longer exists");
  }
  if (context.session.revokedAt !== null) {
    throw new AuthError("session_revoked", "The session has been revoked");
  }
  if (context.session.absoluteExpiresAt <= now) {
    throw new AuthError("session_revoked", "The session has ended");
  }
  assertAccountUsable(context.user, check.ip);
  if (predatesTokenCutoff(context.session, claims.iat)) {
    throw new AuthError(
      "token_expired",
      "The access token was issued before this session's tokens were renewed; refresh it",
    );
  }
  // Recorded even where a locked session is let in (unlock), so that it knows it was locked.
  const locked = svc.sessions.lockIfIdle(context);
  if (locked && !check.allowLocked) {
    throw new AuthError("screen_locked", "The session is locked; unlock it with POST /auth/unlock");
  }
  // A locked session was last used where the lock found it, however many unlock attempts
  // come (admitOutlivedByLock goes by it); the unlock that succeeds touches it.
  if (!locked) svc.sessions.touch(context);
  // Spelled out: a spread of `context` took V8's slow path on every request (2 % of a
  // cached GET /users/me, perf), where a literal keeps one shape.
  return { session: context.session, user: context.user, claims };
}

/** The claims of a genuine, unexpired access token: from the cache, else verified. */
export async function verifiedClaims(svc: Services, token: string): Promise<AccessClaims> {
  const now = svc.clock.now();
  return cachedClaims(svc, token, now) ?? (await verifyAndCache(svc, token, now));
}

const cachedClaims = (svc: Services, token: string, now: number) =>
  svc.verifiedTokens.get(token, now, svc.config.tokens.clockToleranceSeconds);

async function verifyAndCache(svc: Services, token: string, now: number): Promise<AccessClaims> {
  const claims = await verifyAccessToken(token, svc.keys.findKey, tokenSettings(svc), now);
  svc.verifiedTokens.set(token, claims);
  return claims;
}
