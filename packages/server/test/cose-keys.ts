import type { KeyObject } from "node:crypto";

/**
 * COSE keys by hand (RFC 9053 §7, RFC 8230 §4), as CBOR decodes them: label 1 is kty,
 * 3 alg, the rest the key's. Values are whatever a test needs, broken ones included.
 */
export type CoseMap = Map<number, unknown>;

export const okpKey = (x: Uint8Array, crv = 6): CoseMap =>
  new Map<number, unknown>([
    [1, 1],
    [3, -8],
    [-1, crv],
    [-2, x],
  ]);

export const ec2Key = (x: unknown, y: unknown, { alg = -7, crv = 1 } = {}): CoseMap =>
  new Map<number, unknown>([
    [1, 2],
    [3, alg],
    [-1, crv],
    [-2, x],
    [-3, y],
  ]);

export const rsaKey = (n: Uint8Array, e: Uint8Array): CoseMap =>
  new Map<number, unknown>([
    [1, 3],
    [3, -257],
    [-1, n],
    [-2, e],
  ]);

/** A generated public key's JWK members as bytes: `jwkOf(key)("x")`. */
export const jwkOf = (key: KeyObject) => {
  const jwk = key.export({ format: "jwk" });
  return (member: "x" | "y" | "n" | "e") => Buffer.from(jwk[member] ?? "", "base64url");
};
