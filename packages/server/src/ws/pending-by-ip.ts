import { ipLimitKey } from "../domain/ip-rules.js";
import type { Connection } from "./connection.js";

/**
 * Sockets not yet authenticated, counted per IP (IPv6: per /64, as the rate limits
 * count). Such a socket costs memory for up to the auth timeout before anything is
 * known of its owner, so one address may hold only `max` of them at a time.
 */
export class PendingByIp {
  private readonly counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts `conn` in, or answers false when its IP holds `max` already. */
  admit(conn: Connection): boolean {
    const key = ipLimitKey(conn.client.ip);
    const count = this.counts.get(key) ?? 0;
    if (count >= this.max) return false;
    this.counts.set(key, count + 1);
    conn.pendingKey = key;
    return true;
  }

  /** `conn` authenticated or closed: it no longer counts. Idempotent. */
  settle(conn: Connection): void {
    const key = conn.pendingKey;
    if (key === undefined) return;
    conn.pendingKey = undefined;
    const count = (this.counts.get(key) ?? 1) - 1;
    if (count > 0) this.counts.set(key, count);
    else this.counts.delete(key);
  }
}
