/** A Latchkey account as the domain sees it. Times are epoch milliseconds. */
export interface User {
  id: string;
  email: string | null;
  emailVerified: boolean;
  /** A guest's own address, unverified and kept apart from account emails (README "Guests"). */
  guestEmail: string | null;
  username: string | null;
  passwordHash: string | null;
  role: string;
  tier: string;
  subscriptionStatus: string;
  guest: boolean;
  disabled: boolean;
  allowedIps: string[];
  sessionDurationMinutes: number | null;
  singleSession: boolean;
  screenLockMinutes: number | null;
  mfaEnabled: boolean;
  /** Federated identities linked to the account (OAuth 2.0 / OpenID Connect). */
  identities: LinkedIdentity[];
  /**
   * Moves on whenever every session of the user is ended. A sign-in keeps its new session
   * only if this has not moved since it read the account, so no session outlives a
   * password reset that a sign-in in flight raced.
   */
  sessionEpoch: number;
  createdAt: number;
  updatedAt: number;
}

export interface LinkedIdentity {
  /** The configured provider id. */
  provider: string;
  /** The provider's stable id for the account (`sub`, or GitHub's numeric id). */
  subject: string;
  email: string | null;
  linkedAt: number;
}

/** Emails are compared case-folded (RFC 5321 allows case-sensitive local parts; no provider uses them). */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export const usernameKey = (username: string) => username.toLowerCase();

/**
 * A valid e-mail address as browsers check <input type=email> (WHATWG), so a dotless
 * domain such as localhost or an intranet host is one too. The API's `format: "email"`
 * and what a provider's profile says are held to this one rule.
 */
export const EMAIL_ADDRESS =
  /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** `identifier` in login: an `@` means an email, anything else a username. */
export const isEmailIdentifier = (identifier: string) => identifier.includes("@");
