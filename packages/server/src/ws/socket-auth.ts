import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import { authenticate } from "../flows/authenticate.js";
import { refresh } from "../flows/refresh.js";
import type { ClientInfo, Services } from "../services.js";
import type { SessionContext } from "../store/sessions.js";
import type { ServerMessage, SocketCredential } from "./protocol.js";

/** A new access token is pushed this long before the current one expires (at most half its life). */
const TOKEN_PUSH_LEAD_MS = 60_000;

export interface SocketSession {
  userId: string;
  sessionId: string;
  /** When to push the next access token; undefined for a cookie socket (see README). */
  pushAt: number | undefined;
  greeting: Extract<ServerMessage, { type: "authenticated" }>;
}

/** The moment to push a successor to a token living from `issuedAt` to `expiresAt` (ms). */
export const pushTime = (issuedAt: number, expiresAt: number) =>
  expiresAt - Math.min(TOKEN_PUSH_LEAD_MS, (expiresAt - issuedAt) / 2);

/**
 * The two ways in: an access token goes through the request path's `authenticate`,
 * a refresh token through `/auth/refresh`'s own rotation (grace window and reuse
 * detection included). Both throw the AuthError the HTTP routes would answer.
 */
export async function authenticateSocket(
  svc: Services,
  credential: SocketCredential,
  client: ClientInfo,
): Promise<SocketSession> {
  if (credential.kind === "refresh") {
    const issued = await refresh(svc, credential.token, client);
    const now = svc.clock.now();
    const { user, sessionId, accessToken, refreshToken, expiresIn } = issued;
    return {
      userId: user.id,
      sessionId,
      pushAt: pushTime(now, now + expiresIn * 1000),
      greeting: {
        type: "authenticated",
        userId: user.id,
        sessionId,
        accessToken,
        refreshToken,
        expiresIn,
      },
    };
  }
  const { user, session, claims } = await authenticate(svc, credential.token, { ip: client.ip });
  return {
    userId: user.id,
    sessionId: session.id,
    // An HttpOnly cookie is kept from scripts; pushing its successor into one would undo that.
    pushAt:
      credential.via === "cookie" ? undefined : pushTime(claims.iat * 1000, claims.exp * 1000),
    greeting: { type: "authenticated", userId: user.id, sessionId: session.id },
  };
}

/**
 * The heartbeat's check of an open socket's session: the request path's rules, bound
 * to the session rather than to a token. Not activity: an open tab alone must not
 * hold off the idle screen lock.
 */
export async function checkSocketSession(
  svc: Services,
  socket: { userId: string; sessionId: string },
  ip: string,
): Promise<SessionContext> {
  const context =
    svc.sessions.cached(socket.sessionId) ?? (await svc.sessions.load(socket.sessionId));
  if (!context || context.session.userId !== socket.userId || context.session.revokedAt !== null) {
    throw new AuthError("session_revoked", "The session has been revoked");
  }
  if (context.session.absoluteExpiresAt <= svc.clock.now()) {
    throw new AuthError("session_revoked", "The session has ended");
  }
  assertAccountUsable(context.user, ip);
  if (svc.sessions.lockIfIdle(context)) {
    throw new AuthError("screen_locked", "The session is locked; unlock it with POST /auth/unlock");
  }
  return context;
}
