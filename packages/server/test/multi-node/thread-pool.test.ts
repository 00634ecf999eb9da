import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { type Deployment, deployment, startNode } from "./processes.js";

describe("the latchkey command's thread pool (where Argon2id runs)", () => {
  const deps: Deployment[] = [];
  afterAll(() => Promise.all(deps.map((d) => d.drop())));

  /** What a node says in its ready line, and how many threads it runs. */
  async function poolOf(env: Record<string, string>) {
    const dep = deployment(env);
    deps.push(dep);
    const node = await startNode(dep);
    try {
      const ready = node
        .output()
        .split("\n")
        .find((line) => line.includes("Latchkey is ready"));
      return {
        reported: (JSON.parse(ready ?? "{}") as { threadPoolSize?: number }).threadPoolSize,
        threads: readdirSync(`/proc/${node.child.pid}/task`).length,
      };
    } finally {
      await node.stop();
    }
  }

  it("has a thread per core, or as many as UV_THREADPOOL_SIZE says", async () => {
    const byCores = await poolOf({});
    const one = await poolOf({ UV_THREADPOOL_SIZE: "1" });
    const five = await poolOf({ UV_THREADPOOL_SIZE: "5" });
    const zero = await poolOf({ UV_THREADPOOL_SIZE: "0" }); // libuv makes it 1
    expect([byCores.reported, one.reported, five.reported, zero.reported]).toEqual([
      availableParallelism(),
      1,
      5,
      1,
    ]);
    // libuv took the size: everything else being equal, the difference is the pool's.
    expect(five.threads - one.threads).toBe(4);
    expect(byCores.threads - one.threads).toBe(availableParallelism() - 1);
    expect(zero.threads).toBe(one.threads);
  });
});
