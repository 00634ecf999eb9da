import type { Generated } from "kysely";

/**
 * Row types. Columns with a database default are `Generated`. Times are epoch milliseconds and flags are 0/1 integers on both
 * databases, so one set of queries and one clock serve SQLite and PostgreSQL alike.
 */
export interface UsersTable {
  id: string;
  email: string | null;
  email_verified: Generated<number>;
  /** The address, this one or an earlier one, was proven once (migration 0009). */
  email_ever_verified: Generated<number>;
  username: string | null;
  /** Lower-cased username: the unique, case-insensitive lookup key. */
  username_key: string | null;
  password_hash: string | null;
  role: Generated<string>;
  tier: Generated<string>;
  subscription_status: Generated<string>;
  guest: Generated<number>;
  disabled: Generated<number>;
  /** JSON array of IPs and CIDRs. */
  allowed_ips: Generated<string>;
  session_duration_minutes: number | null;
  single_session: Generated<number>;
  screen_lock_minutes: number | null;
  totp_secret: string | null;
  mfa_enabled: Generated<number>;
  /** Set for guests only; unique among them. */
  guest_email: string | null;
  /** Moves on whenever all of the user's sessions are ended (migration 0007). */
  session_epoch: Generated<number>;
  created_at: number;
  updated_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  refresh_hash: string;
  previous_refresh_hash: string | null;
  rotated_at: number | null;
  generation: Generated<number>;
  absolute_expires_at: number;
  created_at: number;
  last_seen_at: number;
  ip: string | null;
  user_agent: string | null;
  browser: string | null;
  os: string | null;
  /** JSON array, RFC 8176 method references. */
  amr: Generated<string>;
  remember_me: Generated<number>;
  locked_at: number | null;
  revoked_at: number | null;
  revoked_reason: string | null;
  /** Access tokens with `iat` before this are refused (a lifted screen lock). */
  tokens_valid_after: number | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: string;
  /** Sealed with the master key when one is configured. */
  private_jwk: string;
  created_at: number;
  retired_at: number | null;
  expires_at: number | null;
}

export interface ServerSecretsTable {
  name: string;
  /** Sealed with the master key when one is configured. */
  value: string;
  created_at: number;
}

export interface AuditEventsTable {
  id: string;
  type: string;
  user_id: string | null;
  session_id: string | null;
  ip: string | null;
  user_agent: string | null;
  /** JSON object with event-specific fields. */
  detail: Generated<string>;
  created_at: number;
}

export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  /** The first characters of the token, shown so users can tell tokens apart. */
  prefix: string;
  token_hash: string;
  /** JSON array of scope names. */
  scopes: Generated<string>;
  expires_at: number | null;
  last_used_at: number | null;
  created_at: number;
}

export interface BackupCodesTable {
  id: string;
  user_id: string;
  /** HMAC-SHA256 under a server key: 8-character codes are too short for a bare hash. */
  code_hash: string;
  used_at: number | null;
  created_at: number;
}

export interface IdentitiesTable {
  provider: string;
  subject: string;
  user_id: string;
  /** The email the provider reported at the last sign-in, as it said (may be unverified). */
  email: string | null;
  linked_at: number;
  /** JSON of the IdP's tokens, sealed with the master key; null unless configured. */
  tokens: string | null;
}

/** A finished federated sign-in awaiting POST /auth/oauth/exchange (`body` delivery). */
export interface OAuthCodesTable {
  /** SHA-256 of the one-time code. */
  code_hash: string;
  user_id: string;
  provider: string;
  /** The browser context recorded at /start, for the session the exchange creates. */
  ip: string | null;
  user_agent: string | null;
  expires_at: number;
  /** The user's session epoch when the code was handed (migration 0010). */
  session_epoch: Generated<number>;
}

export interface WebauthnCredentialsTable {
  /** Credential ID, base64url. */
  id: string;
  user_id: string;
  name: string;
  /** COSE public key, base64url. */
  public_key: string;
  counter: Generated<number>;
  /** JSON array of AuthenticatorTransport names. */
  transports: Generated<string>;
  /** "singleDevice" | "multiDevice" (the BE flag). */
  device_type: string;
  /** The BS flag as last reported. */
  backed_up: Generated<number>;
  created_at: number;
  last_used_at: number | null;
}

export interface WebauthnChallengesTable {
  /** SHA-256 of the challengeId the client holds. */
  id_hash: string;
  challenge: string;
  purpose: string;
  user_id: string | null;
  bound_to: string | null;
  for_identifier: Generated<number>;
  expires_at: number;
  used_at: number | null;
  created_at: number;
}

export interface MetaTable {
  key: string;
  value: string;
}

export const ONE_TIME_PURPOSES = ["verify_email", "reset_password", "magic_link"] as const;
export type OneTimePurpose = (typeof ONE_TIME_PURPOSES)[number];

export interface OneTimeTokensTable {
  id: string;
  user_id: string;
  purpose: OneTimePurpose;
  /** SHA-256 of the mailed token; the token itself is never stored. */
  token_hash: string;
  email: string;
  expires_at: number;
  used_at: number | null;
  created_at: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  signing_keys: SigningKeysTable;
  server_secrets: ServerSecretsTable;
  audit_events: AuditEventsTable;
  api_tokens: ApiTokensTable;
  backup_codes: BackupCodesTable;
  one_time_tokens: OneTimeTokensTable;
  meta: MetaTable;
  identities: IdentitiesTable;
  oauth_codes: OAuthCodesTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
}
