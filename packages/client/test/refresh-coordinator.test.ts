import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { RefreshCoordinator } from "../src/refresh-coordinator.js";

// Node has BroadcastChannel but no Web Locks: this is the fallback path of a browser
// without navigator.locks. Two coordinators on one channel stand for two tabs.
const open: RefreshCoordinator[] = [];
afterEach(() => {
  for (const c of open.splice(0)) c.close();
});

function tabs(): [RefreshCoordinator, RefreshCoordinator] {
  const name = `tabs-${randomBytes(6).toString("hex")}`;
  const pair: [RefreshCoordinator, RefreshCoordinator] = [
    new RefreshCoordinator(name, true),
    new RefreshCoordinator(name, true),
  ];
  open.push(...pair);
  return pair;
}

function deferred() {
  let resolve: (ok: boolean) => void = () => {};
  const promise = new Promise<boolean>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Long enough for a BroadcastChannel message between threads of one process. */
const delivered = () => new Promise((r) => setTimeout(r, 50));

describe("RefreshCoordinator without Web Locks", () => {
  it("a tab that heard another announce a refresh waits for it instead of refreshing", async () => {
    const [a, b] = tabs();
    const rotation = deferred();
    let bRefreshed = 0;
    const first = a.run(a.version, () => rotation.promise);
    await delivered();
    const second = b.run(b.version, async () => {
      bRefreshed++;
      return true;
    });
    rotation.resolve(true);
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    expect(bRefreshed).toBe(0);
    expect(b.version).toBe(1);
  });

  it("refreshes itself when the other tab's refresh failed", async () => {
    const [a, b] = tabs();
    const rotation = deferred();
    let bRefreshed = 0;
    const first = a.run(a.version, () => rotation.promise);
    await delivered();
    const second = b.run(b.version, async () => {
      bRefreshed++;
      return true;
    });
    rotation.resolve(false);
    expect(await first).toBe(false);
    expect(await second).toBe(true);
    expect(bRefreshed).toBe(1);
  });

  it("shares one refresh among concurrent callers in one tab, and skips it for stale callers", async () => {
    const [a] = tabs();
    let refreshes = 0;
    const refresh = async () => {
      refreshes++;
      await delivered();
      return true;
    };
    const seen = a.version;
    const results = await Promise.all(Array.from({ length: 5 }, () => a.run(seen, refresh)));
    expect(results).toEqual([true, true, true, true, true]);
    expect(await a.run(seen, refresh)).toBe(true); // a 401 from before that refresh
    expect(refreshes).toBe(1);
  });

  it("a request that failed before a refused refresh gives up instead of trying again", async () => {
    const [a] = tabs();
    const seen = a.version;
    let calls = 0;
    const refused = async () => {
      calls++;
      return false;
    };
    expect(await a.run(seen, refused)).toBe(false);
    expect(await a.run(seen, refused)).toBe(false); // its 401 arrived after the first refusal
    expect(calls).toBe(1);
    expect(await a.run(a.version, async () => true)).toBe(true); // a new attempt is allowed
  });

  it("a request that failed before a refresh that threw shares its failure instead of refreshing again", async () => {
    const [a] = tabs();
    const seen = a.version;
    let calls = 0;
    const unreachable = async (): Promise<boolean> => {
      calls++;
      throw new TypeError("fetch failed");
    };
    await expect(a.run(seen, unreachable)).rejects.toThrow("fetch failed");
    // Its 401 arrived after the failure: it gets the same error (a 423 is the app's to show).
    await expect(a.run(seen, unreachable)).rejects.toThrow("fetch failed");
    expect(calls).toBe(1);
    expect(await a.run(a.version, async () => true)).toBe(true); // a new attempt is allowed
  });
});
