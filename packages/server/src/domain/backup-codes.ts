import { type KeyObject, randomInt } from "node:crypto";
import { hmac, macKey } from "./crypto.js";

export const BACKUP_CODE_COUNT = 10;
export const BACKUP_CODE_LENGTH = 8;
/** No 0/O, 1/I/L: codes are read off paper and typed by hand. 31^8 ≈ 2^39.6. */
const ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE = new RegExp(`^[${ALPHABET}]{${BACKUP_CODE_LENGTH}}$`);

/** A new set of one-time recovery codes, uniformly drawn from the alphabet. */
export function generateBackupCodes(count = BACKUP_CODE_COUNT): string[] {
  return Array.from({ length: count }, () =>
    Array.from({ length: BACKUP_CODE_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join(""),
  );
}

/** The canonical form of what a user typed (any case, spaces or dashes), or undefined. */
export function normalizeBackupCode(input: string): string | undefined {
  const code = input.replace(/[\s-]/g, "").toUpperCase();
  return CODE.test(code) ? code : undefined;
}

/**
 * Backup codes are stored as HMAC-SHA256 under a server key, never bare: 40 bits
 * hashed without a secret fall to an offline search of a leaked table in minutes.
 * The user id is bound in, so equal codes of two users never share a hash.
 */
export class BackupCodeHasher {
  private readonly key: KeyObject;

  constructor(key: Buffer) {
    this.key = macKey(key);
  }

  hash(userId: string, code: string): string {
    return hmac(this.key, `backup|${userId}|${code}`);
  }
}
