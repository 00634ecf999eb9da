import type { Redis } from "ioredis";
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from "rate-limiter-flexible";
import { ipLimitKey } from "../domain/ip-rules.js";

/**
 * A counter per key over a fixed window: memory on one node, Redis when several
 * share the limit. Answers are "seconds until allowed again", 0 meaning allowed.
 */
export class Limiter {
  private readonly limiter: RateLimiterAbstract;
  /** Per-IP limiters count under ipLimitKey (IPv6 by /64), whoever calls them. */
  private readonly keyOf: (key: string) => string;

  /** `name` prefixes the keys: give each limit its own, and each deployment its own namespace. */
  constructor(
    name: string,
    private readonly points: number,
    windowSeconds: number,
    redis?: Redis,
    { perIp = false }: { perIp?: boolean } = {},
  ) {
    this.keyOf = perIp ? ipLimitKey : (key) => key;
    const options = { keyPrefix: name, points, duration: windowSeconds };
    this.limiter = redis
      ? new RateLimiterRedis({ ...options, storeClient: redis })
      : new RateLimiterMemory(options);
  }

  /** Seconds the key is still blocked for, without counting anything. */
  async blockedFor(key: string): Promise<number> {
    const res = await this.limiter.get(this.keyOf(key));
    if (!res || res.consumedPoints < this.points) return 0;
    return retryAfter(res);
  }

  /** Counts one event; returns the seconds to wait when this one went over the limit. */
  async hit(key: string): Promise<number> {
    try {
      await this.limiter.consume(this.keyOf(key));
      return 0;
    } catch (err) {
      if (err instanceof RateLimiterRes) return retryAfter(err);
      throw err;
    }
  }

  /** Gives back one event counted by `hit` (an attempt that turned out not to count). */
  async refund(key: string): Promise<void> {
    await this.limiter.reward(this.keyOf(key), 1);
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(this.keyOf(key));
  }
}

const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));
