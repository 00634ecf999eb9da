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

/** Past the signature, a payload that is not an access token (another Latchkey JWT type). */
export function asAccessClaims(payload: Record<string, unknown>): LatchkeyClaims | undefined {
  if (payload.typ !== "access" || typeof payload.sid !== "string") return undefined;
  return payload as unknown as LatchkeyClaims;
}
