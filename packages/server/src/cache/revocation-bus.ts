import type { Redis } from "ioredis";
import { closeRedis } from "./redis.js";

/** What one node tells the others so their caches stay true. */
export type CacheEvent =
  /** `change` lets open WebSockets close at once, without reading the row again. */
  | { type: "session"; sessionId: string; change?: "revoked" | "locked" }
  | { type: "user"; userId: string }
  /** An API token was deleted; `hash` is its SHA-256, never the secret. */
  | { type: "api_token"; hash: string }
  | { type: "keys" };

/** Fan-out of revocations (DESIGN.md step 4): the memory bus serves one node, Redis many. */
export interface RevocationBus {
  publish(event: CacheEvent): void;
  subscribe(listener: (event: CacheEvent) => void): void;
  close(): Promise<void>;
}

export class MemoryBus implements RevocationBus {
  private readonly listeners: Array<(event: CacheEvent) => void> = [];

  publish(event: CacheEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  subscribe(listener: (event: CacheEvent) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {}
}

/**
 * Redis pub/sub. The publishing node applies the event locally at once and does
 * not wait for Redis, so its own revocations never lag.
 */
export class RedisBus implements RevocationBus {
  private readonly local = new MemoryBus();

  private constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly nodeId: string,
    private readonly channel: string,
  ) {}

  /** `sub` is a connection of its own (`redis.duplicate()`): a subscriber can do nothing else. */
  static async connect(
    redis: Redis,
    sub: Redis,
    nodeId: string,
    prefix: string,
  ): Promise<RedisBus> {
    const channel = `${prefix}:cache-events`;
    const bus = new RedisBus(redis, sub, nodeId, channel);
    await sub.subscribe(channel);
    sub.on("message", (_channel, message) => {
      const { from, event } = JSON.parse(message) as { from: string; event: CacheEvent };
      if (from !== nodeId) bus.local.publish(event);
    });
    return bus;
  }

  publish(event: CacheEvent): void {
    this.local.publish(event);
    this.pub.publish(this.channel, JSON.stringify({ from: this.nodeId, event })).catch(() => {
      // The cache TTL bounds how long another node can miss this; see SessionCache.
    });
  }

  subscribe(listener: (event: CacheEvent) => void): void {
    this.local.subscribe(listener);
  }

  async close(): Promise<void> {
    await closeRedis(this.sub);
  }
}
