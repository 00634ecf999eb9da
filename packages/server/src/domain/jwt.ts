import { type JWTPayload, SignJWT } from "jose";
import { randomToken } from "./crypto.js";
import type { Keyring } from "./keyring.js";

export interface JwtIssue {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

/**
 * Every JWT Latchkey signs: the keyring's current key and `kid`, an explicit header
 * `typ` so one kind never passes for another (RFC 8725 §3.11), a random `jti`.
 */
export function signJwt(
  payload: JWTPayload,
  headerTyp: string,
  keyring: Keyring,
  issue: JwtIssue,
  nowMs: number,
): Promise<string> {
  const iat = Math.floor(nowMs / 1000);
  const { signing } = keyring;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: signing.alg, kid: signing.kid, typ: headerTyp })
    .setIssuer(issue.issuer)
    .setAudience(issue.audience)
    .setJti(randomToken(16))
    .setIssuedAt(iat)
    .setExpirationTime(iat + issue.ttlSeconds)
    .sign(signing.key);
}
