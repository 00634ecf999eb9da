/** One login, and one refresh-token family. Times are epoch milliseconds. */
export interface Session {
  id: string;
  userId: string;
  generation: number;
  rotatedAt: number | null;
  absoluteExpiresAt: number;
  createdAt: number;
  lastSeenAt: number;
  ip: string | null;
  userAgent: string | null;
  browser: string | null;
  os: string | null;
  amr: string[];
  rememberMe: boolean;
  lockedAt: number | null;
  revokedAt: number | null;
  revokedReason: string | null;
}

export type RevokeReason =
  | "logout"
  | "logout_all"
  | "revoked_by_user"
  | "refresh_token_reused"
  | "password_changed"
  | "admin";

export interface SessionLifetimes {
  refreshTtlSeconds: number;
  rememberMeTtlSeconds: number;
}

/**
 * How long a new session lives: the user's own `sessionDurationMinutes` wins,
 * then rememberMe, then the default.
 */
export function sessionLifetimeMs(
  lifetimes: SessionLifetimes,
  user: { sessionDurationMinutes: number | null },
  rememberMe: boolean,
): number {
  if (user.sessionDurationMinutes) return user.sessionDurationMinutes * 60_000;
  return (rememberMe ? lifetimes.rememberMeTtlSeconds : lifetimes.refreshTtlSeconds) * 1000;
}

/** lastSeenAt is written at most this often per session, so reads never turn into writes. */
export const LAST_SEEN_WRITE_INTERVAL_MS = 60_000;
