import { createSecretKey } from "node:crypto";
import { errors, jwtVerify } from "jose";
import {
  ACCESS_TOKEN_TYP,
  asAccessClaims,
  type LatchkeyClaims,
  REQUIRED_CLAIMS,
} from "./claims.js";
import { VerifyError } from "./errors.js";
import { Introspector } from "./introspection.js";
import { remoteKeySet } from "./jwks.js";
import { resolveOptions, type VerifierOptions } from "./options.js";

export interface Verifier {
  /** The claims of a valid, unexpired (and, with introspection, active) access token. */
  verify(token: string): Promise<LatchkeyClaims>;
  /** `verify` for an `Authorization` header value: `Bearer <token>`. */
  authenticate(authorization: string | undefined): Promise<LatchkeyClaims>;
}

const BEARER = /^Bearer +([\x21-\x7e]+)$/i;
/** The scheme alone: whatever follows it, a header of this scheme presented a token. */
const BEARER_SCHEME = /^bearer(?: |$)/i;

/**
 * Verifies Latchkey access tokens against its JWKS (RFC 8725): keys fetched, cached
 * and refetched when a token names an unknown `kid` (a rotation); `alg` pinned to
 * the configured list (§3.1); `iss`, `aud` (§3.8, §3.9) and `typ` (§3.11) checked.
 * With `secret` (Latchkey signing HS256), that key alone and HS256 alone.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const o = resolveOptions(options);
  const keys =
    "secret" in o.keys
      ? createSecretKey(Buffer.from(o.keys.secret, "utf8"))
      : remoteKeySet(o.keys.jwksUrl, o.jwksCooldownSeconds * 1000, o.clock);
  const introspector =
    o.introspection &&
    new Introspector(
      o.introspection.url,
      o.introspection.apiToken,
      o.introspection.cacheSeconds * 1000,
      o.clock,
    );

  const verify = async (token: string): Promise<LatchkeyClaims> => {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: o.algorithms,
        issuer: o.issuer,
        audience: o.audience,
        typ: ACCESS_TOKEN_TYP,
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: o.clockToleranceSeconds,
        currentDate: new Date(o.clock.now()),
      }));
    } catch (err) {
      throw refusal(err);
    }
    const claims = asAccessClaims(payload);
    if (!claims) throw new VerifyError("invalid_token", "The token is not an access token");
    if (introspector && !(await introspector.isActive(token, claims.jti, claims.exp * 1000))) {
      throw new VerifyError("token_inactive", "The token is no longer active");
    }
    return claims;
  };

  return {
    verify,
    authenticate: async (authorization) => {
      // Another scheme (Basic, a bare token) carries no credential of ours: the request
      // "lacks any authentication information" (RFC 6750 §3.1), so the bare challenge,
      // as Latchkey answers. Only a malformed Bearer value is an invalid token.
      if (!authorization || !BEARER_SCHEME.test(authorization)) {
        throw new VerifyError("unauthenticated", "A Bearer token is required");
      }
      const match = BEARER.exec(authorization);
      if (!match) throw new VerifyError("invalid_token", "Authorization must be `Bearer <token>`");
      return verify(match[1] as string);
    },
  };
}

/** jose's verdicts as ours; a JWKS that cannot be fetched or read is "unavailable". */
function refusal(err: unknown): VerifyError {
  if (err instanceof errors.JWTExpired) {
    return new VerifyError("token_expired", "The access token has expired");
  }
  const unreachable =
    !(err instanceof errors.JOSEError) ||
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    err.constructor === errors.JOSEError;
  if (unreachable) return new VerifyError("unavailable", "Latchkey's JWKS could not be fetched");
  return new VerifyError("invalid_token", "The access token is not valid");
}
