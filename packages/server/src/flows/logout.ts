import type { Services } from "../services.js";

/** The session a refresh token belongs to, if this server issued it. */
export function sessionOfRefreshToken(svc: Services, token: string): string | undefined {
  return svc.refreshTokens.parse(token)?.sessionId;
}

export async function logout(svc: Services, sessionId: string): Promise<void> {
  await svc.sessions.revoke(sessionId, "logout");
}

export async function logoutAll(svc: Services, userId: string): Promise<number> {
  return (await svc.sessions.revokeAllForUser(userId, "logout_all")).length;
}
