/** The claims of a Latchkey access token (API.md "Tokens"). */
export interface LatchkeyClaims {
  iss: string;
  aud: string;
  /** The user id. */
  sub: string;
  /** The session id. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  typ: "access";
  role: string;
  tier: string;
  subscriptionStatus: string;
  username: string | null;
  emailVerified: boolean;
  guest: boolean;
  /** How the user signed in, e.g. ["pwd", "otp"]. */
  amr: string[];
}

/** RFC 9068 §2.1: the `typ` header of an access token. */
export const ACCESS_TOKEN_TYP = "at+jwt";
/** Without these an access token is not one of ours (RFC 9068 §2.2). */
export const REQUIRED_CLAIMS = ["sub", "sid", "jti", "iat", "exp"];

/**
 * The `amr` values Latchkey puts in access tokens (RFC 8176 §2, and `fed`, `guest`):
 * - `pwd` password; `otp` TOTP or backup code; `email` magic link; `fed` OAuth/OIDC provider;
 * - `hwk` passkey, with `user` when the authenticator verified the user (PIN, biometric);
 * - `guest` a guest session, no credential at all.
 * A session that passed MFA carries both factors, e.g. `["pwd","otp"]`, `["hwk","user"]`.
 */
export const AMR_VALUES = ["pwd", "otp", "hwk", "user", "email", "fed", "guest"] as const;

/**
 * Past the signature, a payload that is not an access token (another Latchkey JWT type),
 * or one without the claims authorization reads: a route requirement must refuse such a
 * token, never throw a TypeError on it.
 */
export function asAccessClaims(payload: Record<string, unknown>): LatchkeyClaims | undefined {
  if (payload.typ !== "access" || typeof payload.sid !== "string") return undefined;
  if (typeof payload.role !== "string" || !isStringList(payload.amr)) return undefined;
  return payload as unknown as LatchkeyClaims;
}

const isStringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === "string");
