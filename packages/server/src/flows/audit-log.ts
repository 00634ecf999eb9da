import type { Clock } from "../domain/clock.js";
import type { AuditEvent, AuditStore } from "../store/audit.js";

/** Events wait at most this long before they are written. */
export const AUDIT_FLUSH_MS = 50;
/** A batch this large is written at once. SQLite's default limit is 32766 bound values. */
const MAX_BATCH = 200;

/**
 * Security events are written in batches, off the request path: one INSERT per
 * batch instead of one transaction per event. A login's audit row cost ~8 % of
 * login throughput on SQLite when written alone (bench/RESULTS.md). Events still
 * queued are written on close; a crash can lose at most AUDIT_FLUSH_MS of them,
 * as a fire-and-forget write could.
 */
export class AuditLog {
  private queue: Array<{ event: AuditEvent; at: number }> = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: AuditStore,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void,
  ) {}

  add(event: AuditEvent): void {
    this.queue.push({ event, at: this.clock.now() });
    if (this.queue.length >= MAX_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), AUDIT_FLUSH_MS).unref();
  }

  /** Writes everything queued so far; resolves when it is stored (or failed and was logged). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    // Batches go in order, one at a time: SQLite has one connection anyway.
    this.writing = this.writing.then(() => this.store.recordMany(batch)).catch(this.onError);
    return this.writing;
  }
}
