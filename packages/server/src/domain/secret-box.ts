import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** What every sealed value starts with; a value without it was stored in clear. */
export const SEALED_PREFIX = "enc:v1:";
const PREFIX = SEALED_PREFIX;
const IV_BYTES = 12; // NIST SP 800-38D §8.2 recommended GCM nonce size

/**
 * Seals secrets kept at rest (private signing keys, server secrets) with AES-256-GCM
 * under the master key. Without a master key values are stored as they are, and
 * a sealed value then cannot be opened: start-up fails loudly instead of serving
 * with the wrong keys.
 */
export class SecretBox {
  private readonly key: Buffer | undefined;

  constructor(masterKey: string | undefined) {
    this.key = masterKey
      ? createHash("sha256").update(`latchkey-master:${masterKey}`).digest()
      : undefined;
  }

  /** Whether `seal` encrypts (a master key is set). */
  get seals(): boolean {
    return this.key !== undefined;
  }

  seal(plaintext: string): string {
    if (!this.key) return plaintext;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
  }

  open(stored: string): string {
    if (!stored.startsWith(PREFIX)) return stored;
    if (!this.key)
      throw new Error("A stored secret is encrypted but LATCHKEY_MASTER_KEY is not set");
    const raw = Buffer.from(stored.slice(PREFIX.length), "base64url");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + 16));
    try {
      return Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES + 16)),
        decipher.final(),
      ]).toString("utf8");
    } catch {
      throw new Error("A stored secret cannot be decrypted: LATCHKEY_MASTER_KEY is wrong");
    }
  }
}
