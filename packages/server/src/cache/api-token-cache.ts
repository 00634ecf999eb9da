import type { ApiTokenContext } from "../store/api-tokens.js";
import { BoundedMap } from "./bounded-map.js";

const MAX_ENTRIES = 10_000;
/** How long a looked-up token is trusted without the database; deletion evicts sooner. */
export const API_TOKEN_CACHE_MS = 5_000;

interface Entry {
  context: ApiTokenContext;
  loadedAt: number;
}

/**
 * API tokens by the SHA-256 of their secret (DESIGN.md step 2). Entries live at most
 * API_TOKEN_CACHE_MS, so a node that misses a deletion message still refuses the token
 * within that time; a deletion seen by this node evicts at once.
 */
export class ApiTokenCache {
  private readonly entries = new BoundedMap<string, Entry>(MAX_ENTRIES);
  private evictions = 0;

  /** Changes with every eviction; see SessionCache.epoch for why loads check it. */
  get epoch(): number {
    return this.evictions;
  }

  get(tokenHash: string, now: number): ApiTokenContext | undefined {
    const entry = this.entries.get(tokenHash);
    if (!entry) return undefined;
    if (now - entry.loadedAt >= API_TOKEN_CACHE_MS) {
      this.entries.delete(tokenHash);
      return undefined;
    }
    return entry.context;
  }

  set(context: ApiTokenContext, now: number, epoch: number): void {
    if (epoch !== this.evictions) return;
    this.entries.set(context.token.tokenHash, { context, loadedAt: now });
  }

  evict(tokenHash: string): void {
    this.evictions++;
    this.entries.delete(tokenHash);
  }

  /** A change to the user (disabled, profile) invalidates every cached token of theirs. */
  evictUser(userId: string): void {
    this.evictions++;
    for (const [hash, entry] of this.entries) {
      if (entry.context.user.id === userId) this.entries.delete(hash);
    }
  }
}
