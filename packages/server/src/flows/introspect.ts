import type { AccessClaims } from "../domain/access-token.js";
import { isApiToken } from "../domain/api-token.js";
import { AuthError } from "../domain/errors.js";
import { predatesTokenCutoff } from "../domain/session.js";
import type { Services } from "../services.js";
import { verifiedClaims } from "./authenticate.js";

/** RFC 7662 §2.2: an inactive token says nothing else, so the caller never learns why. */
export type Introspection = { active: false } | { active: true; claims: AccessClaims };

const INACTIVE: Introspection = { active: false };

/**
 * POST /auth/introspect for services: is this access token usable right now? The same
 * checks as the request path except the caller's IP (the caller is the service, not
 * the user), and it is not activity: a service checking a token does not hold off the
 * user's idle screen lock.
 */
export async function introspect(svc: Services, token: string): Promise<Introspection> {
  // Only access tokens are introspectable; refresh and API tokens never leave their owner.
  if (isApiToken(token) || svc.refreshTokens.parse(token)) return INACTIVE;
  let claims: AccessClaims;
  try {
    claims = await verifiedClaims(svc, token);
  } catch (err) {
    if (err instanceof AuthError) return INACTIVE;
    throw err;
  }
  const context = svc.sessions.cached(claims.sid) ?? (await svc.sessions.load(claims.sid));
  if (!context || context.session.userId !== claims.sub) return INACTIVE;
  const { session, user } = context;
  if (session.revokedAt !== null || session.absoluteExpiresAt <= svc.clock.now()) return INACTIVE;
  if (user.disabled) return INACTIVE;
  if (predatesTokenCutoff(session, claims.iat)) return INACTIVE;
  if (svc.sessions.lockIfIdle(context)) return INACTIVE;
  return { active: true, claims };
}
