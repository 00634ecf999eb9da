import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const IV_BYTES = 12; // NIST SP 800-38D §8.2 recommended GCM nonce size
const TAG_BYTES = 16;

/**
 * Short-lived state a browser carries for us (the OAuth start cookie): AES-256-GCM
 * under a server key, so the client can neither read it (the PKCE verifier stays
 * secret) nor change it. `purpose` is bound as associated data, so a value sealed
 * for one use never opens for another. Expiry is inside the sealed value.
 */
export class StateSealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new TypeError("StateSealer: the key must be 32 bytes");
  }

  seal(purpose: string, value: object, expiresAt: number): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv).setAAD(Buffer.from(purpose));
    const plain = JSON.stringify({ v: value, exp: expiresAt });
    const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  }

  /** The value when genuine, of this purpose and unexpired at `now`; else undefined. */
  open(purpose: string, sealed: string, now: number): unknown {
    const raw = Buffer.from(sealed, "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, IV_BYTES))
        .setAAD(Buffer.from(purpose))
        .setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
      const { v, exp } = JSON.parse(plain) as { v: unknown; exp: number };
      return exp > now ? v : undefined;
    } catch {
      return undefined;
    }
  }
}
