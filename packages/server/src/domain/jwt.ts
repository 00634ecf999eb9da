import type { JWTPayload } from "jose";
import { randomToken } from "./crypto.js";
import type { Keyring } from "./keyring.js";

export interface JwtIssue {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * Every JWT Latchkey signs, as a JWS compact serialization (RFC 7515 §7.1): the
 * keyring's current key and `kid`, an explicit header `typ` so one kind never passes
 * for another (RFC 8725 §3.11), a random `jti`. Synchronous: see SigningKey.
 */
export function signJwt(
  payload: JWTPayload,
  headerTyp: string,
  keyring: Keyring,
  issue: JwtIssue,
  nowMs: number,
): string {
  const iat = Math.floor(nowMs / 1000);
  const { signing } = keyring;
  const header = b64({ alg: signing.alg, kid: signing.kid, typ: headerTyp });
  const claims = b64({
    ...payload,
    iss: issue.issuer,
    aud: issue.audience,
    jti: randomToken(16),
    iat,
    exp: iat + issue.ttlSeconds,
  });
  const input = `${header}.${claims}`;
  return `${input}.${signing.sign(input)}`;
}
