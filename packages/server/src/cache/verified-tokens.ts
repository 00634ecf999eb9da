import type { AccessClaims } from "../domain/access-token.js";
import { BoundedMap } from "./bounded-map.js";

const MAX_ENTRIES = 20_000;
/**
 * Entries are found by the token's last characters (its signature's): a Map hashes a
 * new string key in full, ~0.9 µs for an access token of ~600 characters, a request's
 * largest cost after the socket write. 32 base64url characters are 192 bits of an
 * Ed25519 or HMAC signature; the whole token must still match (see get).
 */
const KEY_LENGTH = 32;

/**
 * Access token -> claims for tokens whose signature we already checked. An EdDSA
 * verify costs ~110 µs here, more than the rest of an authenticated request; the
 * session is still checked on every request, so a revoked session is refused
 * even while its token sits in this cache.
 */
export class VerifiedTokenCache {
  private readonly entries = new BoundedMap<string, { token: string; claims: AccessClaims }>(
    MAX_ENTRIES,
  );

  get(token: string, nowMs: number, toleranceSeconds: number): AccessClaims | undefined {
    const key = token.slice(-KEY_LENGTH);
    const entry = this.entries.get(key);
    // A token forged to end like a verified one is not that token.
    if (entry?.token !== token) return undefined;
    if ((entry.claims.exp + toleranceSeconds) * 1000 <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.claims;
  }

  set(token: string, claims: AccessClaims): void {
    this.entries.set(token.slice(-KEY_LENGTH), { token, claims });
  }
}
