import { describe, expect, it } from "vitest";
import { ApiTokenCache } from "../src/cache/api-token-cache.js";
import { Limiter } from "../src/cache/rate-limit.js";
import { SessionCache } from "../src/cache/session-cache.js";
import type { ApiTokenContext } from "../src/store/api-tokens.js";
import type { SessionContext } from "../src/store/sessions.js";

const session = { session: { id: "s1", lastSeenAt: 0 }, user: { id: "u1" } } as SessionContext;
const apiToken = { token: { tokenHash: "h1" }, user: { id: "u1" } } as ApiTokenContext;

describe("regression: a load that races a revocation is not cached", () => {
  it("SessionCache keeps nothing read before an eviction that happened during the read", () => {
    const cache = new SessionCache(1000);
    const epoch = cache.epoch; // the load starts
    cache.evict("s1"); // a revocation commits and evicts meanwhile
    cache.set(session, 0, epoch); // the load ends with the row it read before
    expect(cache.get("s1", 0)).toBeUndefined();
    cache.set(session, 0, cache.epoch); // a later load caches as usual
    expect(cache.get("s1", 0)).toBe(session);
  });

  it("a user change during the read counts too", () => {
    const cache = new SessionCache(1000);
    const epoch = cache.epoch;
    cache.evictUser("u1");
    cache.set(session, 0, epoch);
    expect(cache.get("s1", 0)).toBeUndefined();
  });

  it("ApiTokenCache likewise, for a token deleted during its lookup", () => {
    const cache = new ApiTokenCache();
    const epoch = cache.epoch;
    cache.evict("h1");
    cache.set(apiToken, 0, epoch);
    expect(cache.get("h1", 0)).toBeUndefined();
    cache.set(apiToken, 0, cache.epoch);
    expect(cache.get("h1", 0)).toBe(apiToken);
  });
});

describe("per-IP limiter", () => {
  it("counts an IPv6 client by its /64, and IPv4 by address", async () => {
    const limiter = new Limiter("test-ip", 1, 60, undefined, { perIp: true });
    expect(await limiter.hit("2001:db8:1:2::1")).toBe(0);
    expect(await limiter.hit("2001:db8:1:2:ffff::9")).toBeGreaterThan(0);
    expect(await limiter.hit("2001:db8:1:3::1")).toBe(0);
    expect(await limiter.hit("203.0.113.1")).toBe(0);
    expect(await limiter.hit("::ffff:203.0.113.1")).toBeGreaterThan(0);
  });
});
