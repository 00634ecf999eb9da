/** A passkey as the domain sees it. Times are epoch milliseconds. */
export interface Passkey {
  /** Credential ID, base64url. */
  id: string;
  userId: string;
  name: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: "singleDevice" | "multiDevice";
  backedUp: boolean;
  createdAt: number;
  lastUsedAt: number | null;
}

/** What a challenge was issued for; it answers only a ceremony of the same purpose. */
export type ChallengePurpose = "register" | "login" | "mfa" | "step_up";

export interface Challenge {
  challenge: string;
  purpose: ChallengePurpose;
  /** The user it was issued for; null for a discoverable (or unknown-identifier) login. */
  userId: string | null;
  /** The session (register, step_up), the MFA token's jti (mfa), or null (login). */
  boundTo: string | null;
  /**
   * A sign-in challenge issued for an identifier: only `userId`'s passkeys answer it,
   * none when no account has the identifier (`userId` null).
   */
  forIdentifier: boolean;
  expiresAt: number;
}

/** WebAuthn §5.4.6 / §13.4.3: a ceremony left unanswered this long is void. */
export const CHALLENGE_TTL_MS = 5 * 60_000;

/** A credential ID in base64url: WebAuthn §7.1 refuses more than 1023 bytes (1364 characters). */
export const CREDENTIAL_ID_MAX_B64U = 1364;

/** Names users give passkeys; the default says when it was added. */
export const PASSKEY_NAME_MAX = 64;

/**
 * RFC 8176 method references for an assertion: `hwk` (proof of possession of a
 * hardware-bound key) and, when the authenticator verified the user (PIN or
 * biometric, UV flag), `user` as well: the passkey alone is then two factors.
 */
export const assertionAmr = (userVerified: boolean): string[] =>
  userVerified ? ["hwk", "user"] : ["hwk"];

/** The user handle we put in creation options: the user id's bytes (§14.6.1: no PII). */
export const userHandle = (userId: string) => Uint8Array.from(Buffer.from(userId, "utf8"));
