import { afterEach, describe, expect, it } from "vitest";
import { REDIS_CONNECT_TIMEOUT_MS } from "../src/cache/redis.js";
import { PG_CONNECT_TIMEOUT_MS } from "../src/store/postgres.js";
import { startTestApp } from "./helpers.js";
import { closedPort, type TcpServer, tcpServer } from "./tcp-server.js";

// Regressions. PostgreSQL: pg's pool had no connect timeout, so a port that accepted and
// never answered held `latchkey serve` and `latchkey migrate` for ever; a refused one failed
// with "connect ECONNREFUSED …" out of the first migration, naming no setting. Redis: an
// unreachable one failed the start with ioredis's "Unhandled error event" and a stack on
// stderr, then "Connection is closed." naming neither REDIS_URL nor the host; a port that
// accepted and never answered held the start for ever.
describe.each([
  {
    service: "PostgreSQL",
    setting: "DATABASE_URL",
    timeoutMs: PG_CONNECT_TIMEOUT_MS,
    at: (port: number) => ({ databaseUrl: `postgres://latchkey:s3cret@127.0.0.1:${port}/db` }),
  },
  {
    service: "Redis",
    setting: "REDIS_URL",
    timeoutMs: REDIS_CONNECT_TIMEOUT_MS,
    at: (port: number) => ({ redisUrl: `redis://:s3cret@127.0.0.1:${port}` }),
  },
])("start-up with $setting unreachable", ({ service, setting, timeoutMs, at }) => {
  const servers: TcpServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  it(`fails at once on a refused connection, naming ${setting} and the host, not the password`, async () => {
    const port = await closedPort();
    const err = (await startTestApp(at(port)).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(
      new RegExp(
        `^Cannot connect to ${service} \\(${setting}, 127\\.0\\.0\\.1:${port}\\): .*ECONNREFUSED`,
      ),
    );
    expect(err.message).not.toContain("s3cret");
  });

  it("gives up on a server that never answers", async () => {
    const silent = await tcpServer(() => {}); // accepts, reads, never answers
    servers.push(silent);
    const { port } = silent;
    const started = performance.now();
    await expect(startTestApp(at(port))).rejects.toThrow(
      `Cannot connect to ${service} (${setting}, 127.0.0.1:${port}): no answer within ${timeoutMs / 1000} s`,
    );
    expect(performance.now() - started).toBeLessThan(timeoutMs + 3000);
  });
});
