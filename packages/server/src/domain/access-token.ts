import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import { AuthError } from "./errors.js";
import { signJwt } from "./jwt.js";
import type { JwtKey, Keyring } from "./keyring.js";

/** RFC 9068 §2.1: access tokens carry this media type in the `typ` header. */
const ACCESS_TOKEN_TYP = "at+jwt";

export interface AccessClaims {
  iss: string;
  aud: string;
  sub: string;
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
  amr: string[];
}

export type AccessSubject = Pick<
  AccessClaims,
  | "sub"
  | "sid"
  | "role"
  | "tier"
  | "subscriptionStatus"
  | "username"
  | "emailVerified"
  | "guest"
  | "amr"
>;

export interface TokenSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clockToleranceSeconds: number;
}

export function signAccessToken(
  subject: AccessSubject,
  keyring: Keyring,
  settings: TokenSettings,
  nowMs: number,
): string {
  return signJwt(
    { ...subject, typ: "access" },
    ACCESS_TOKEN_TYP,
    keyring,
    { issuer: settings.issuer, audience: settings.audience, ttlSeconds: settings.ttlSeconds },
    nowMs,
  );
}

/**
 * Verifies an access token. Guard clauses follow RFC 8725: the key is chosen by
 * `kid` and the algorithm pinned to that key (§3.1, §3.2), `iss`/`aud` checked
 * (§3.8, §3.9), and the token type checked so no other JWT we sign passes as an
 * access token (§3.11).
 */
export async function verifyAccessToken(
  token: string,
  findKey: (kid: string) => Promise<JwtKey | undefined>,
  settings: TokenSettings,
  nowMs: number,
): Promise<AccessClaims> {
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw new AuthError("invalid_token", "The access token is malformed");
  }
  if (typeof kid !== "string") throw new AuthError("invalid_token", "The access token has no kid");
  const key = await findKey(kid);
  if (!key) {
    // A token outliving its retired key is reported as expired, so clients refresh
    // instead of signing the user out. The claim is unverified; it only picks the code.
    if (isPast(token, nowMs)) throw new AuthError("token_expired", "The access token has expired");
    throw new AuthError("invalid_token", "The access token was signed by an unknown key");
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key.key, {
      algorithms: [key.alg],
      issuer: settings.issuer,
      audience: settings.audience,
      typ: ACCESS_TOKEN_TYP,
      requiredClaims: ["sub", "sid", "exp", "iat", "jti"],
      clockTolerance: settings.clockToleranceSeconds,
      currentDate: new Date(nowMs),
    }));
  } catch (err) {
    if (err instanceof errors.JWTExpired) {
      throw new AuthError("token_expired", "The access token has expired");
    }
    throw new AuthError("invalid_token", "The access token is not valid");
  }
  if (payload.typ !== "access" || typeof payload.sid !== "string") {
    throw new AuthError("invalid_token", "The token is not an access token");
  }
  return payload as unknown as AccessClaims;
}

function isPast(token: string, nowMs: number): boolean {
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === "number" && exp * 1000 <= nowMs;
  } catch {
    return false;
  }
}
