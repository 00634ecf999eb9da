import { afterEach, describe, expect, it } from "vitest";
import { PG_CONNECT_TIMEOUT_MS } from "../src/store/postgres.js";
import { startTestApp } from "./helpers.js";
import { closedPort, type TcpServer, tcpServer } from "./tcp-server.js";

// Regression: pg's pool had no connect timeout, so a PostgreSQL port that accepted and never
// answered held `latchkey serve` and `latchkey migrate` for ever; a refused one failed with
// "connect ECONNREFUSED …" out of the first migration, naming no setting.
describe("start-up with DATABASE_URL unreachable", () => {
  const servers: TcpServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.close();
  });

  it("fails at once on a refused connection, naming DATABASE_URL and the host, not the password", async () => {
    const port = await closedPort();
    const start = startTestApp({ databaseUrl: `postgres://latchkey:s3cret@127.0.0.1:${port}/db` });
    const err = (await start.catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(
      new RegExp(
        `^Cannot connect to PostgreSQL \\(DATABASE_URL, 127\\.0\\.0\\.1:${port}\\): .*ECONNREFUSED`,
      ),
    );
    expect(err.message).not.toContain("s3cret");
  });

  it("gives up on a server that never answers", async () => {
    const silent = await tcpServer(() => {}); // accepts, reads, never answers
    servers.push(silent);
    const { port } = silent;
    const started = performance.now();
    const start = startTestApp({ databaseUrl: `postgres://latchkey:s3cret@127.0.0.1:${port}/db` });
    await expect(start).rejects.toThrow(
      `Cannot connect to PostgreSQL (DATABASE_URL, 127.0.0.1:${port}): no answer within ${PG_CONNECT_TIMEOUT_MS / 1000} s`,
    );
    expect(performance.now() - started).toBeLessThan(PG_CONNECT_TIMEOUT_MS + 3000);
  });
});
