import { once } from "node:events";
import { connect, createServer, type Socket } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { REDIS_CONNECT_TIMEOUT_MS } from "../src/cache/redis.js";
import { startTestApp, TEST_DB, type TestApp } from "./helpers.js";

interface TcpServer {
  port: number;
  /** Stops listening and cuts every open connection, as a server that went away. */
  close(): Promise<void>;
}

/** A TCP server (on a free port unless given one); `serve` decides what each connection gets. */
async function tcpServer(serve: (socket: Socket) => void, port = 0): Promise<TcpServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    serve(socket);
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function closedPort(): Promise<number> {
  const server = await tcpServer(() => {});
  await server.close();
  return server.port;
}

/** Log lines as objects, from a real pino logger. */
function capturedLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

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

// Regression: once started, every failed reconnect went to stderr as an "Unhandled error
// event" with a stack, several a second, instead of the JSON log; and a shutdown while
// Redis was down failed on QUIT ("Connection is closed.") before closing the database.
describe.runIf(TEST_DB === "postgres")("Redis lost after the start", () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("logs one line when the connection is lost and one when it is back", async () => {
    const redis = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    const relay = (socket: Socket) => {
      const upstream = connect(Number(redis.port || 6379), redis.hostname);
      upstream.on("error", () => socket.destroy());
      socket.on("close", () => upstream.destroy());
      socket.pipe(upstream).pipe(socket);
    };
    let proxy = await tcpServer(relay);
    const { port } = proxy;
    const { logger, lines } = capturedLog();
    app = await startTestApp({ redisUrl: `redis://127.0.0.1:${port}` }, { logger });

    await proxy.close(); // Redis is gone; reconnects are refused
    await new Promise((r) => setTimeout(r, 1500));
    const lost = lines.filter((l) => l.msg === "Redis connection lost; reconnecting");
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(lost.length).toBeLessThanOrEqual(2); // the main and the subscriber connection

    proxy = await tcpServer(relay, port);
    await expect
      .poll(() => lines.filter((l) => l.msg === "Redis connection restored").length, {
        timeout: 5000,
      })
      .toBe(lost.length);

    // A shutdown while Redis is down still closes everything, the database included.
    await proxy.close();
    await new Promise((r) => setTimeout(r, 200));
    const closing = app;
    app = undefined;
    await expect(closing.close()).resolves.toBeUndefined();
  });
});
