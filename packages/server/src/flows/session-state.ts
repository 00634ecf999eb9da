import { BoundedMap } from "../cache/bounded-map.js";
import type { RevocationBus } from "../cache/revocation-bus.js";
import type { SessionCache } from "../cache/session-cache.js";
import type { Clock } from "../domain/clock.js";
import { idleLockMinutes } from "../domain/screen-lock.js";
import {
  isIdleTooLong,
  LAST_SEEN_WRITE_INTERVAL_MS,
  type RevokeReason,
  tokensCutoff,
} from "../domain/session.js";
import type { Store } from "../store/index.js";
import type { SessionContext } from "../store/sessions.js";

const MAX_TRACKED_SESSIONS = 50_000;

/**
 * Session reads for the hot path and every revocation, so that no revocation can
 * forget to evict the cache or tell the other nodes. A revocation made in a transaction
 * (the `store` argument) is told once it has committed (Store.afterCommit): never for a
 * rollback, and never before another node's re-read would find it.
 */
export class SessionState {
  /** When each session's lastSeenAt was last written to the database. */
  private readonly lastWritten = new BoundedMap<string, number>(MAX_TRACKED_SESSIONS);

  constructor(
    private readonly store: Store,
    private readonly cache: SessionCache,
    private readonly bus: RevocationBus,
    private readonly clock: Clock,
    private readonly onBackgroundError: (err: unknown) => void,
  ) {
    bus.subscribe((event) => {
      if (event.type === "session") cache.evict(event.sessionId);
      else if (event.type === "user") cache.evictUser(event.userId);
    });
  }

  cached(sessionId: string): SessionContext | undefined {
    return this.cache.get(sessionId, this.clock.now());
  }

  async load(sessionId: string): Promise<SessionContext | undefined> {
    const now = this.clock.now();
    const epoch = this.cache.epoch;
    const loaded = await this.store.sessions.findContext(sessionId);
    if (!loaded) return undefined;
    const seen = this.cache.lastSeenAt(sessionId) ?? 0;
    if (seen > loaded.session.lastSeenAt) loaded.session.lastSeenAt = seen;
    this.cache.set(loaded, now, epoch);
    return loaded;
  }

  /**
   * True when the session is screen-locked: locked explicitly, or idle longer than
   * the user's screenLockMinutes (never a guest's), in which case the lock is recorded now
   * (ASVS 3.3.x).
   */
  lockIfIdle(context: SessionContext): boolean {
    const { session, user } = context;
    if (session.lockedAt !== null) return true;
    const now = this.clock.now();
    if (!isIdleTooLong(session, idleLockMinutes(user), now)) return false;
    session.lockedAt = now;
    this.store.sessions.lock(session.id, now).catch(this.onBackgroundError);
    return true;
  }

  /** Locks now (POST /sessions/lock); every node forgets its cached copy. */
  async lock(sessionId: string): Promise<void> {
    await this.store.sessions.lock(sessionId, this.clock.now());
    this.bus.publish({ type: "session", sessionId, change: "locked" });
  }

  /** Lifts the lock; access tokens issued before now, even in this second, stay refused. */
  async unlock(sessionId: string): Promise<void> {
    // The next whole second: `iat` has no finer grain, so a token minted earlier in
    // this second must fall before it too; the unlock's own tokens are dated at it.
    const now = this.clock.now();
    // In use again from now, written with the unlock: a node reading the last use the lock
    // left behind would find the session idle and lock it again at once.
    await this.store.sessions.unlock(sessionId, tokensCutoff(now), now);
    this.lastWritten.set(sessionId, now);
    this.bus.publish({ type: "session", sessionId });
  }

  /**
   * Records activity: at once in memory (the idle screen lock reads it), in the
   * database at most once a minute per session, off the response path.
   */
  touch(context: SessionContext): void {
    const now = this.clock.now();
    const { session } = context;
    let written = this.lastWritten.get(session.id);
    if (written === undefined) {
      written = session.lastSeenAt; // as loaded: the database's value
      this.lastWritten.set(session.id, written);
    }
    session.lastSeenAt = now;
    if (now - written < LAST_SEEN_WRITE_INTERVAL_MS) return;
    this.lastWritten.set(session.id, now);
    this.store.sessions.touch(session.id, now).catch(this.onBackgroundError);
  }

  async revoke(sessionId: string, reason: RevokeReason, store = this.store): Promise<boolean> {
    const revoked = await store.sessions.revoke(sessionId, reason, this.clock.now());
    // Only the call that ended it tells the nodes: a session ended already was told of then.
    if (revoked) store.afterCommit(() => this.published([sessionId]));
    return revoked;
  }

  async revokeAllForUser(
    userId: string,
    reason: RevokeReason,
    keep?: string,
    store = this.store,
  ): Promise<string[]> {
    // First: a sign-in in flight then either finds the epoch moved (and drops its session,
    // issue-tokens.ts) or made its session before the revocation below, which ends it.
    await store.users.moveSessionEpoch(userId);
    const ids = await store.sessions.revokeAllForUser(userId, reason, this.clock.now(), keep);
    store.afterCommit(() => this.published(ids));
    return ids;
  }

  /**
   * singleSession: a sign-in ends the user's sessions older than its own (ids are UUIDv7,
   * so in time order). Only older ones: sign-ins at the same moment each ending all the
   * others would leave none, and the newest must stand. Moves no epoch, so it ends no
   * sign-in in flight.
   */
  async revokeOlderForUser(userId: string, sessionId: string): Promise<void> {
    const now = this.clock.now();
    this.published(await this.store.sessions.revokeOlderThan(userId, sessionId, now));
  }

  private published(ids: string[]): void {
    for (const sessionId of ids)
      this.bus.publish({ type: "session", sessionId, change: "revoked" });
  }

  /** The user's profile or policy changed: cached contexts must be re-read. */
  userChanged(userId: string): void {
    this.bus.publish({ type: "user", userId });
  }
}
