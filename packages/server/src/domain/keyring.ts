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
    readonly signing: JwtKey,
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
    const signing = {
      kid: newest.kid,
      alg: newest.alg,
      key: (await importJWK(newest.privateJwk, newest.alg)) as CryptoKey,
    };
    const publicJwks = pairs.map((p) => ({ ...p.publicJwk, kid: p.kid, alg: p.alg, use: "sig" }));
    return new Keyring(signing, verification, publicJwks);
  }

  /** HS256 with a shared secret: nothing is published, and only this key verifies. */
  static fromSecret(secret: string): Keyring {
    const key = {
      kid: `hs256-${sha256(secret).slice(0, 12)}`,
      alg: "HS256" as const,
      key: new TextEncoder().encode(secret),
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
