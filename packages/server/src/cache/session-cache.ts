import type { SessionContext } from "../store/sessions.js";
import { BoundedMap } from "./bounded-map.js";

const MAX_ENTRIES = 50_000;

interface Entry {
  context: SessionContext;
  loadedAt: number;
}

/**
 * Session state by id for the hot auth path (DESIGN.md step 4). Entries live at
 * most `ttlMs`, so even a node that misses a revocation message refuses the
 * session within that time; a revocation seen by this node evicts at once.
 */
export class SessionCache {
  private readonly entries = new BoundedMap<string, Entry>(MAX_ENTRIES);
  private evictions = 0;

  constructor(private readonly ttlMs: number) {}

  /**
   * Changes with every eviction. A load takes it before reading the database and
   * passes it to `set`: if anything was evicted meanwhile, the row it read may predate
   * a revocation, so it is not cached (DESIGN.md: never cached past a revocation).
   */
  get epoch(): number {
    return this.evictions;
  }

  get(sessionId: string, now: number): SessionContext | undefined {
    const entry = this.entries.get(sessionId);
    if (!entry) return undefined;
    // An expired entry stays until it is replaced, so `lastSeenAt` can outlive it.
    if (now - entry.loadedAt >= this.ttlMs) return undefined;
    return entry.context;
  }

  /**
   * The activity time this node last recorded for a session, even from an expired
   * entry: its database write runs off the response path and may not have landed
   * when the session is next read.
   */
  lastSeenAt(sessionId: string): number | undefined {
    return this.entries.get(sessionId)?.context.session.lastSeenAt;
  }

  set(context: SessionContext, now: number, epoch: number): void {
    if (this.ttlMs === 0 || epoch !== this.evictions) return;
    this.entries.set(context.session.id, { context, loadedAt: now });
  }

  evict(sessionId: string): void {
    this.evictions++;
    this.entries.delete(sessionId);
  }

  /** A change to the user (policy, profile) invalidates every cached session of theirs. */
  evictUser(userId: string): void {
    this.evictions++;
    for (const [sid, entry] of this.entries) {
      if (entry.context.user.id === userId) this.entries.delete(sid);
    }
  }
}
