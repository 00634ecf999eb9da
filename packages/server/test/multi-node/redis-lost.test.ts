import { connect, type Socket } from "node:net";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers.js";
import { tcpServer } from "../tcp-server.js";

/** Log lines as objects, from a real pino logger. */
function capturedLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

// Regression: once started, every failed reconnect went to stderr as an "Unhandled error
// event" with a stack, several a second, instead of the JSON log; and a shutdown while
// Redis was down failed on QUIT ("Connection is closed.") before closing the database.
describe("Redis lost after the start", () => {
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
