import type { Redis } from "ioredis";
import { BoundedMap } from "./bounded-map.js";

const MAX_ENTRIES = 100_000;

/**
 * "Has this one-time value been used?" (a TOTP step per user, an MFA token's jti).
 * `claim` succeeds once per key until the key expires; with Redis the answer is
 * shared by every node, so a code replayed against another node is refused too.
 */
export interface ReplayGuard {
  /** True for the first claim of `key` within `ttlMs`; false for every later one. */
  claim(key: string, ttlMs: number, now: number): Promise<boolean>;
  /** Gives a claim back, for a use that claimed first and then failed. */
  release(key: string): Promise<void>;
}

/** One node. Entries are only made after a successful check, so the bound is never reached by guessing. */
export class MemoryReplayGuard implements ReplayGuard {
  private readonly expiries = new BoundedMap<string, number>(MAX_ENTRIES);

  async claim(key: string, ttlMs: number, now: number): Promise<boolean> {
    const expiresAt = this.expiries.get(key);
    if (expiresAt !== undefined && expiresAt > now) return false;
    this.expiries.delete(key); // re-inserted last, so the bound drops the oldest first
    this.expiries.set(key, now + ttlMs);
    return true;
  }

  async release(key: string): Promise<void> {
    this.expiries.delete(key);
  }
}

/** `SET key 1 PX ttl NX`: atomic, so of two nodes claiming at once exactly one wins. */
export class RedisReplayGuard implements ReplayGuard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async claim(key: string, ttlMs: number): Promise<boolean> {
    const set = await this.redis.set(`${this.prefix}:${key}`, "1", "PX", Math.max(1, ttlMs), "NX");
    return set === "OK";
  }

  async release(key: string): Promise<void> {
    await this.redis.del(`${this.prefix}:${key}`);
  }
}
