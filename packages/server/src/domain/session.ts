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
  /**
   * Access tokens issued before this are refused (set when a screen lock lifts or the
   * password changes): always a whole second, see tokensCutoff.
   */
  tokensValidAfter: number | null;
}

export type RevokeReason =
  | "logout"
  | "logout_all"
  | "revoked_by_user"
  | "refresh_token_reused"
  | "password_changed"
  | "password_reset"
  | "single_session"
  | "account_deleted"
  | "admin"
  | "account_disabled"
  | "email_claimed"
  /** The guest's other sessions, when it became a full account (anyone with its email had one). */
  | "guest_upgraded"
  /** Made by a sign-in that a password reset, change or logout-all overtook. */
  | "sign_in_raced";

export interface SessionLifetimes {
  refreshTtlSeconds: number;
  rememberMeTtlSeconds: number;
  /** The ceiling on a user's own sessionDurationMinutes (config tokens.maxSessionDurationSeconds). */
  maxSessionDurationSeconds: number;
}

/** A guest session lasts exactly this long, whatever else is asked (API.md: guests 50 h fixed). */
export const GUEST_SESSION_MS = 50 * 3_600_000;

/**
 * How long a new session lives: fixed for guests; otherwise the user's own
 * `sessionDurationMinutes` wins (never past the operator's ceiling, which may have been
 * lowered since the user chose it), then rememberMe, then the default.
 */
export function sessionLifetimeMs(
  lifetimes: SessionLifetimes,
  user: { sessionDurationMinutes: number | null; guest?: boolean },
  rememberMe: boolean,
): number {
  if (user.guest) return GUEST_SESSION_MS;
  if (user.sessionDurationMinutes) {
    return Math.min(
      user.sessionDurationMinutes * 60_000,
      lifetimes.maxSessionDurationSeconds * 1000,
    );
  }
  return (rememberMe ? lifetimes.rememberMeTtlSeconds : lifetimes.refreshTtlSeconds) * 1000;
}

/** The longest sessionDurationMinutes a user may choose under the operator's ceiling. */
export const maxSessionDurationMinutes = (lifetimes: SessionLifetimes) =>
  Math.floor(lifetimes.maxSessionDurationSeconds / 60);

/** lastSeenAt is written at most this often per session, so reads never turn into writes. */
export const LAST_SEEN_WRITE_INTERVAL_MS = 60_000;

/** Idle past the user's screen-lock limit, judged by lastSeenAt (kept to the minute). */
export function isIdleTooLong(
  session: Pick<Session, "lastSeenAt">,
  screenLockMinutes: number | null,
  now: number,
): boolean {
  return screenLockMinutes !== null && now - session.lastSeenAt >= screenLockMinutes * 60_000;
}

/**
 * The `tokensValidAfter` a renewal of a session's tokens (password change, unlock) sets
 * at `now`: the start of the NEXT whole second. A JWT's `iat` is whole seconds, so a
 * cut-off at this second's start would let a token minted earlier in this very second
 * through; one at the next second's start refuses every token issued so far. The tokens
 * issued with the renewal are dated at the cut-off (accessTokenIssuedAt), so they pass.
 */
export function tokensCutoff(now: number): number {
  return (Math.floor(now / 1000) + 1) * 1000;
}

/**
 * The issue time for a new access token of this session: now, or the session's cut-off
 * while that is still ahead (by under a second on the clock that set it), so that the tokens
 * a renewal hands out, and any refreshed in the same second, are not refused on arrival.
 */
export function accessTokenIssuedAt(
  session: Pick<Session, "tokensValidAfter">,
  now: number,
): number {
  const cutoff = session.tokensValidAfter;
  return cutoff !== null && cutoff > now ? cutoff : now;
}

/** True when an access token (its `iat`, seconds) was issued before the session's cut-off. */
export function predatesTokenCutoff(
  session: Pick<Session, "tokensValidAfter">,
  iatSeconds: number,
): boolean {
  return session.tokensValidAfter !== null && iatSeconds * 1000 < session.tokensValidAfter;
}
