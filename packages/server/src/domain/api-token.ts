import { randomToken } from "./crypto.js";

/**
 * What an API token may do. Routes name the scope they accept; a route that names
 * none refuses API tokens altogether (token management, MFA, step-up, logout).
 */
export const API_TOKEN_SCOPES = [
  "profile:read",
  "sessions:read",
  "sessions:write",
  /** POST /auth/introspect: for a service that checks other users' access tokens. */
  "introspect",
] as const;
export type Scope = (typeof API_TOKEN_SCOPES)[number];

/** Every API token starts with this, which is how the guard tells one from a JWT. */
export const API_TOKEN_PREFIX = "lk_";
/** Characters after `lk_` kept in clear so users can tell their tokens apart. */
export const DISPLAY_PREFIX_LENGTH = 8;
export const API_TOKEN_NAME_MAX_LENGTH = 100;
export const API_TOKEN_MAX_DAYS = 3650;
const DAY_MS = 86_400_000;

/** lastUsedAt is written at most this often per token, so uses never turn into writes. */
export const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/** An API token as stored: never the secret, only its hash. Times are epoch milliseconds. */
export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  tokenHash: string;
  scopes: Scope[];
  expiresAt: number | null;
  lastUsedAt: number | null;
  createdAt: number;
}

/** A new secret: `lk_` and 256 random bits (ASVS V3.2.2), and the part shown for display. */
export function generateApiToken(): { token: string; prefix: string } {
  const secret = randomToken(32);
  return {
    token: `${API_TOKEN_PREFIX}${secret}`,
    prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH),
  };
}

export const isApiToken = (token: string) => token.startsWith(API_TOKEN_PREFIX);

export const apiTokenExpiry = (now: number, expiresInDays: number | undefined) =>
  expiresInDays === undefined ? null : now + expiresInDays * DAY_MS;

export const isExpired = (token: Pick<ApiToken, "expiresAt">, now: number) =>
  token.expiresAt !== null && token.expiresAt <= now;

/** Scopes read back from storage: unknown names (from a newer version) grant nothing. */
export const knownScopes = (names: unknown[]): Scope[] =>
  names.filter((n): n is Scope => API_TOKEN_SCOPES.includes(n as Scope));
