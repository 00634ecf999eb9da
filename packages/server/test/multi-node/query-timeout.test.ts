import { connect, type Socket } from "node:net";
import pg from "pg";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { json, registerUser, startTestApp, type TestApp } from "../helpers.js";
import { type TcpServer, tcpServer } from "../tcp-server.js";

const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Low, so the tests wait half a second where a deployment waits 15. */
const QUERY_TIMEOUT_MS = 500;

function capturedLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A second connection to the app's schema, as another client of the same database. */
async function otherConnection(app: TestApp): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`set search_path to "${app.svc.config.databaseSchema}"`);
  return client;
}

/**
 * A TCP relay in front of the real PostgreSQL that can go silent: from then on it keeps
 * every connection open and swallows what the database answers, as a partition, a hung
 * server or a failover in progress looks to a client.
 */
async function silenceableRelay(): Promise<TcpServer & { silence(): void }> {
  const { hostname, port } = new URL(PG_URL);
  let silent = false;
  const relay = await tcpServer((client: Socket) => {
    const server = connect(Number(port || 5432), hostname);
    server.on("error", () => client.destroy());
    client.on("close", () => server.destroy());
    client.on("data", (chunk) => server.write(chunk));
    server.on("data", (chunk) => {
      if (!silent) client.write(chunk);
    });
  });
  const silence = () => {
    silent = true;
  };
  return Object.assign(relay, { silence });
}

// Regression: pg had no query timeout, so a database that stopped answering mid-query held
// the request (and its connection) for ever; the 5 s connect timeout bounds only getting one.
describe("a PostgreSQL query that gets no answer in time", () => {
  let app: TestApp | undefined;
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    await app?.close();
    app = undefined;
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("waiting for a row another connection locked: 503 service_unavailable, and the pool recovers", async () => {
    const { logger, lines } = capturedLog();
    // One connection: the request after the timeout shows that it is not handed on.
    app = await startTestApp(
      { postgresPool: { max: 1, queryTimeoutMs: QUERY_TIMEOUT_MS } },
      { logger },
    );
    const user = await registerUser(app);
    const other = await otherConnection(app);
    cleanups.push(() => other.end());
    await other.query("begin");
    await other.query("select id from users where id = $1 for update", [user.user.id]);

    const started = performance.now();
    const res = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      ...json({ username: "renamed_user" }),
      headers: { "content-type": "application/json", authorization: `Bearer ${user.accessToken}` },
    });

    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 50);
    expect(waited).toBeLessThan(QUERY_TIMEOUT_MS + 3000);
    expect(res.statusCode).toBe(503); // it used to wait as long as the lock was held
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 503, code: "service_unavailable" });
    expect(lines.filter((l) => l.msg === "no database connection")).toHaveLength(1);
    expect(lines.filter((l) => l.msg === "unhandled error")).toHaveLength(0);

    await other.query("rollback");
    const me = await app.http.inject({
      method: "GET",
      url: "/users/me",
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json().username).not.toBe("renamed_user"); // the timed-out write never landed
  });

  it("a database gone silent mid-session: the request ends 503 instead of hanging", async () => {
    const relay = await silenceableRelay();
    cleanups.push(() => relay.close());
    const relayed = new URL(PG_URL);
    relayed.host = `127.0.0.1:${relay.port}`;
    app = await startTestApp({
      databaseUrl: relayed.href,
      postgresPool: { queryTimeoutMs: QUERY_TIMEOUT_MS },
    });
    const user = await registerUser(app);
    relay.silence();

    const started = performance.now();
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/login",
      ...json({ identifier: user.user.email, password: "correct horse battery" }),
    });

    expect(performance.now() - started).toBeLessThan(QUERY_TIMEOUT_MS + 3000);
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 503, code: "service_unavailable" });
  });

  it("the purge job is not bound by it: a batch that waits for a lock longer still finishes", async () => {
    const { logger, lines } = capturedLog();
    app = await startTestApp(
      { purgeIntervalSeconds: 1, postgresPool: { queryTimeoutMs: QUERY_TIMEOUT_MS } },
      { logger },
    );
    const user = await registerUser(app);
    const out = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: { authorization: `Bearer ${user.accessToken}` },
    });
    expect(out.statusCode).toBe(204);
    app.clock.advance(25 * 3600_000); // past the retention of ended sessions
    const other = await otherConnection(app);
    cleanups.push(() => other.end());
    await other.query("begin");
    await other.query("select id from sessions where user_id = $1 for update", [user.user.id]);

    // The hourly job (here every second) starts, and its DELETE waits for the lock.
    await new Promise((r) => setTimeout(r, 1000 + 3 * QUERY_TIMEOUT_MS));
    await other.query("commit");
    const deadline = Date.now() + 5000;
    let left = 1;
    while (left > 0 && Date.now() < deadline) {
      const { rows } = await other.query(
        "select count(*)::int as n from sessions where user_id = $1",
        [user.user.id],
      );
      left = rows[0].n;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(left).toBe(0);
    expect(lines.filter((l) => l.msg === "purge failed")).toHaveLength(0);
  });
});
