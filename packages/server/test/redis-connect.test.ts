import { afterEach, describe, expect, it } from "vitest";
import { REDIS_CONNECT_TIMEOUT_MS } from "../src/cache/redis.js";
import { startTestApp } from "./helpers.js";
import { closedPort, type TcpServer, tcpServer } from "./tcp-server.js";

// Regression: an unreachable Redis failed the start with ioredis's "Unhandled error event"
// and a stack on stderr, then "Connection is closed." naming neither REDIS_URL nor the host;
// a port that accepted and never answered held the start for ever.
describe("start-up with REDIS_URL unreachable", () => {
  const servers: TcpServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  it("fails at once on a refused connection, naming REDIS_URL and the host, not the password", async () => {
    const port = await closedPort();
    const start = startTestApp({ redisUrl: `redis://:s3cret@127.0.0.1:${port}` });
    const err = (await start.catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(
      new RegExp(
        `^Cannot connect to Redis \\(REDIS_URL, 127\\.0\\.0\\.1:${port}\\): .*ECONNREFUSED`,
      ),
    );
    expect(err.message).not.toContain("s3cret");
  });

  it("gives up on a server that never answers", async () => {
    const silent = await tcpServer(() => {}); // accepts, reads, never answers
    servers.push(silent);
    const { port } = silent;
    const started = performance.now();
    const start = startTestApp({ redisUrl: `redis://127.0.0.1:${port}` });
    await expect(start).rejects.toThrow(
      `Cannot connect to Redis (REDIS_URL, 127.0.0.1:${port}): no answer within ${REDIS_CONNECT_TIMEOUT_MS / 1000} s`,
    );
    expect(performance.now() - started).toBeLessThan(REDIS_CONNECT_TIMEOUT_MS + 3000);
  });
});
