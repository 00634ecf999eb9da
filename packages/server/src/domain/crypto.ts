import {
  createHmac,
  createSecretKey,
  hash,
  type KeyObject,
  randomFillSync,
  timingSafeEqual,
} from "node:crypto";

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let poolOffset = POOL_BYTES;

/**
 * Bytes from the CSPRNG, drawn from a pool it refills 4 KiB at a time (as Node's own
 * randomUUID does) instead of one OpenSSL call per draw: a login draws for its session
 * id, its JWT's jti and its audit event's id. Each byte is handed out once,
 * and wiped from the pool as it goes.
 */
export function randomBytes(n: number): Buffer {
  if (n > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(n));
  if (poolOffset + n > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = Buffer.from(pool.subarray(poolOffset, poolOffset + n));
  pool.fill(0, poolOffset, poolOffset + n);
  poolOffset += n;
  return bytes;
}

/** 256 random bits, base64url: the floor for every secret we hand out (ASVS V3.2.2). */
export const randomToken = (bytes = 32) => randomBytes(bytes).toString("base64url");

/**
 * Lookup form of a client-held secret: only this is stored. One-shot `hash` skips the
 * Hash object that `createHash` builds: 0.25 against 0.68 µs here, twice per refresh.
 */
export const sha256 = (value: string) => hash("sha256", value, "base64url");

/** A server-held MAC key, imported once: HMACs under a KeyObject skip the key import. */
export const macKey = (key: Buffer): KeyObject => createSecretKey(key);

export const hmac = (key: KeyObject, value: string) =>
  createHmac("sha256", key).update(value).digest("base64url");

/** Constant-time string equality; unequal lengths compare a same-length buffer first. */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}
