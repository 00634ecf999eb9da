import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** 256 random bits, base64url: the floor for every secret we hand out (ASVS V3.2.2). */
export const randomToken = (bytes = 32) => randomBytes(bytes).toString("base64url");

/** Lookup form of a client-held secret: only this is stored. */
export const sha256 = (value: string) => createHash("sha256").update(value).digest("base64url");

export const hmac = (key: Buffer, value: string) =>
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
