import type { AccessClaims } from "../domain/access-token.js";
import { BoundedMap } from "./bounded-map.js";

const MAX_ENTRIES = 20_000;

/**
 * Access token -> claims for tokens whose signature we already checked. An EdDSA
 * verify costs ~110 µs here, more than the rest of an authenticated request; the
 * session is still checked on every request, so a revoked session is refused
 * even while its token sits in this cache.
 */
export class VerifiedTokenCache {
  private readonly entries = new BoundedMap<string, AccessClaims>(MAX_ENTRIES);

  get(token: string, nowMs: number, toleranceSeconds: number): AccessClaims | undefined {
    const claims = this.entries.get(token);
    if (!claims) return undefined;
    if ((claims.exp + toleranceSeconds) * 1000 <= nowMs) {
      this.entries.delete(token);
      return undefined;
    }
    return claims;
  }

  set(token: string, claims: AccessClaims): void {
    this.entries.set(token, claims);
  }
}
