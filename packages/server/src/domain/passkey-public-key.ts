import { createPublicKey, type JsonWebKey } from "node:crypto";
import { isEd25519Point } from "./ed25519-point.js";

/** A COSE_Key (RFC 9052 §7) as CBOR decodes it: integer labels to values. */
export type CoseKey = ReadonlyMap<unknown, unknown>;

/** COSE_Key labels (RFC 9052 §7.1, RFC 9053 §7, RFC 8230 §4); -1 and -2 depend on kty. */
const LABEL = { kty: 1, alg: 3, crv: -1, x: -2, y: -3, n: -1, e: -2 } as const;
/** IANA COSE values: key types and elliptic curves. */
const KTY = { OKP: 1, EC2: 2, RSA: 3 } as const;
const CRV = { P256: 1, Ed25519: 6 } as const;

/** The key one algorithm verifies with, as a JWK for node:crypto; null when it is not one. */
type KeyShape = (key: CoseKey) => JsonWebKey | null;

const bytesAt = (key: CoseKey, label: number): Uint8Array | null => {
  const value = key.get(label);
  return value instanceof Uint8Array ? value : null;
};
const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const unsigned = (bytes: Uint8Array) => BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`);

/** EdDSA (RFC 9053 §2.2) on Ed25519: a 32-byte encoded point. */
const ed25519: KeyShape = (key) => {
  const x = bytesAt(key, LABEL.x);
  if (key.get(LABEL.kty) !== KTY.OKP || key.get(LABEL.crv) !== CRV.Ed25519) return null;
  if (!x || !isEd25519Point(x)) return null;
  return { kty: "OKP", crv: "Ed25519", x: base64url(x) };
};

/**
 * ES256 (RFC 9053 §2.1) on P-256, the curve WebAuthn pairs it with. The coordinates are
 * exactly 32 bytes: node:crypto accepts a longer one with leading zeros, and refuses a
 * point off the curve.
 */
const p256: KeyShape = (key) => {
  const x = bytesAt(key, LABEL.x);
  const y = bytesAt(key, LABEL.y);
  if (key.get(LABEL.kty) !== KTY.EC2 || key.get(LABEL.crv) !== CRV.P256) return null;
  if (x?.length !== 32 || y?.length !== 32) return null;
  return { kty: "EC", crv: "P-256", x: base64url(x), y: base64url(y) };
};

/**
 * RS256 (RFC 8812 §2). node:crypto takes any n and e, so they are checked here: the
 * modulus from 2048 bits (a short one can be factored) to 16384 (OpenSSL verifies
 * nothing above) and odd, as a product of odd primes is; the exponent odd and above 1
 * (with e = 1 every message is its own signature), of at most 64 bits (OpenSSL refuses
 * more with a modulus over 3072 bits).
 */
const rs256: KeyShape = (key) => {
  const n = bytesAt(key, LABEL.n);
  const e = bytesAt(key, LABEL.e);
  if (key.get(LABEL.kty) !== KTY.RSA || !n || !e) return null;
  const modulus = unsigned(n);
  const exponent = unsigned(e);
  const modulusBits = modulus.toString(2).length;
  if (modulusBits < 2048 || modulusBits > 16384 || modulus % 2n === 0n) return null;
  if (exponent < 3n || exponent % 2n === 0n || exponent >= 2n ** 64n) return null;
  return { kty: "RSA", n: base64url(n), e: base64url(e) };
};

/** COSE algorithm identifiers (IANA) with the key each is used with, in order of preference. */
const SHAPES = new Map<number, KeyShape>([
  [-8, ed25519], // EdDSA
  [-7, p256], // ES256
  [-257, rs256], // RS256: Windows Hello and TPMs
]);

/** What creation options offer (pubKeyCredParams) and registration accepts. */
export const PASSKEY_ALGORITHMS: readonly number[] = [...SHAPES.keys()];

/**
 * Whether a credential's public key can check its authenticator's signatures: of an
 * offered algorithm, with that algorithm's key type and curve, and importable by
 * node:crypto (which is where an EC point off its curve is caught). Any other key would
 * refuse every later assertion (or, RSA with e = 1, take forged ones), so registration
 * refuses it instead.
 */
export function isUsablePasskeyKey(key: CoseKey): boolean {
  const alg = key.get(LABEL.alg);
  const jwk = typeof alg === "number" ? SHAPES.get(alg)?.(key) : null;
  if (!jwk) return false;
  try {
    createPublicKey({ key: jwk, format: "jwk" });
    return true;
  } catch {
    return false;
  }
}
