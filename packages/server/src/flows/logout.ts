import { AuthError } from "../domain/errors.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";

/** The session a refresh token belongs to, if this server issued it. */
export function sessionOfRefreshToken(svc: Services, token: string): string | undefined {
  return svc.refreshTokens.parse(token)?.sessionId;
}

/** Ends one session; only a session this call ended is audited (logging out twice is quiet). */
export async function logout(svc: Services, sessionId: string, client: ClientInfo): Promise<void> {
  const session = await svc.store.sessions.findById(sessionId);
  if (!(await svc.sessions.revoke(sessionId, "logout"))) return;
  audit(svc, { type: "logout", userId: session?.userId, sessionId }, client);
}

export async function logoutAll(
  svc: Services,
  userId: string,
  client: ClientInfo,
  sessionId?: string,
): Promise<number> {
  const revoked = await svc.sessions.revokeAllForUser(userId, "logout_all");
  audit(
    svc,
    { type: "logout_all", userId, sessionId, detail: { revoked: revoked.length } },
    client,
  );
  return revoked.length;
}

/**
 * DELETE /sessions/:id: the user ends one of their own live sessions. Another user's
 * answers exactly like a missing one, and so does one another request ended first
 * (the revoke is conditional): of parallel calls, one ends it and is audited.
 */
export async function revokeOwnSession(
  svc: Services,
  userId: string,
  sessionId: string,
  client: ClientInfo,
): Promise<void> {
  const target = await svc.store.sessions.findById(sessionId);
  if (
    !target ||
    target.userId !== userId ||
    !(await svc.sessions.revoke(sessionId, "revoked_by_user"))
  ) {
    throw new AuthError("not_found", "No such session");
  }
  audit(svc, { type: "session_revoked", userId, sessionId, detail: { by: "user" } }, client);
}
