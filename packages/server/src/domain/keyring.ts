import { createHmac, sign as cryptoSign, KeyObject } from "node:crypto";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from "jose";
import { sha256 } from "./crypto.js";

export type SigningAlg = "EdDSA" | "HS256";

export interface JwtKey {
  kid: string;
  alg: SigningAlg;
  key: CryptoKey | Uint8Array;
}

/**
 * The key this node signs with. `sign` is synchronous node:crypto on purpose: WebCrypto
 * (what jose signs with) queues each signature on the libuv pool, where it waits
 * behind Argon2 hashes; signing inline raised login throughput ~10 % (bench/RESULTS.md).
 * Verification stays with jose.
 */
export interface SigningKey extends JwtKey {
  /** The base64url JWS signature (RFC 7515 §5.1) of a signing input. */
  sign(input: string): string;
}

/** An Ed25519 pair as JWKs; the caller seals the private one before storing it. */
export interface GeneratedKey {
  kid: string;
  alg: "EdDSA";
  publicJwk: JWK;
  privateJwk: JWK;
}

/**
 * The keys one node holds: one to sign with, every published one to verify with.
 * Verification pins each key to its own algorithm (RFC 8725 §3.1), so an HS256
 * token can never be checked against an Ed25519 public key or the reverse.
 */
export class Keyring {
  private readonly byKid: Map<string, JwtKey>;

  constructor(
    readonly signing: SigningKey,
    verification: JwtKey[],
    readonly publicJwks: JWK[],
  ) {
    this.byKid = new Map(verification.map((k) => [k.kid, k]));
  }

  find(kid: string): JwtKey | undefined {
    return this.byKid.get(kid);
  }

  static async fromKeyPairs(pairs: GeneratedKey[]): Promise<Keyring> {
    if (pairs.length === 0) throw new Error("Keyring needs at least one key");
    const verification = await Promise.all(
      pairs.map(async (p) => ({
        kid: p.kid,
        alg: p.alg,
        key: (await importJWK(p.publicJwk, p.alg)) as CryptoKey,
      })),
    );
    const newest = pairs[0] as GeneratedKey;
    const privateKey = (await importJWK(newest.privateJwk, newest.alg)) as CryptoKey;
    const keyObject = KeyObject.from(privateKey);
    const signing: SigningKey = {
      kid: newest.kid,
      alg: newest.alg,
      key: privateKey,
      // RFC 8037 §3.1: Ed25519 signs the input itself (no pre-hash: algorithm null).
      sign: (input) => cryptoSign(null, Buffer.from(input), keyObject).toString("base64url"),
    };
    const publicJwks = pairs.map((p) => ({ ...p.publicJwk, kid: p.kid, alg: p.alg, use: "sig" }));
    return new Keyring(signing, verification, publicJwks);
  }

  /** HS256 with a shared secret: nothing is published, and only this key verifies. */
  static fromSecret(secret: string): Keyring {
    const bytes = Buffer.from(secret, "utf8");
    const key: SigningKey = {
      kid: `hs256-${sha256(secret).slice(0, 12)}`,
      alg: "HS256",
      key: new Uint8Array(bytes),
      sign: (input) => createHmac("sha256", bytes).update(input).digest("base64url"),
    };
    return new Keyring(key, [key], []);
  }
}

/** A fresh Ed25519 pair; `kid` is its RFC 7638 thumbprint. */
export async function generateEd25519(): Promise<GeneratedKey> {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", {
    crv: "Ed25519",
    extractable: true,
  });
  const publicJwk = await exportJWK(publicKey);
  const privateJwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg: "EdDSA", publicJwk, privateJwk };
}
