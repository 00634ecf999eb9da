import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { lazyRequestLogger } from "../src/http/request-logger.js";
import { bearer, registerUser, startTestApp, type TestApp } from "./helpers.js";

type Line = Record<string, unknown>;

/** A real pino logger whose lines land in `lines`, parsed. */
function capturingLogger() {
  const lines: Line[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe("request log", () => {
  const { logger, lines } = capturingLogger();
  let app: TestApp;
  let accessToken: string;
  beforeAll(async () => {
    app = await startTestApp({}, { logger });
    // Only here can a test add a route: Fastify seals its routes at the first request.
    app.http.get("/test/boom", async () => {
      throw new Error("boom");
    });
    ({ accessToken } = await registerUser(app));
  });
  afterAll(() => app.close());
  beforeEach(() => {
    lines.length = 0;
  });

  it("writes one line per request: id, method, path without the query, status, time, ip", async () => {
    const res = await app.http.inject({
      method: "GET",
      url: "/users/me?code=one-time-secret",
      headers: bearer(accessToken),
    });
    expect(res.statusCode).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: "request",
      reqId: expect.any(String),
      method: "GET",
      path: "/users/me",
      status: 200,
      ms: expect.any(Number),
      ip: "127.0.0.1",
    });
    expect(JSON.stringify(lines[0])).not.toContain("one-time-secret");
  });

  it("gives each request its own id", async () => {
    await app.http.inject({ method: "GET", url: "/healthz" });
    await app.http.inject({ method: "GET", url: "/no/such/route" });
    expect(lines.map((l) => [l.path, l.status])).toEqual([
      ["/healthz", 200],
      ["/no/such/route", 404],
    ]);
    expect(lines[0]?.reqId).not.toBe(lines[1]?.reqId);
  });

  it("carries the request's id on what the request itself logs", async () => {
    const res = await app.http.inject({ method: "GET", url: "/test/boom" });
    expect(res.statusCode).toBe(500);
    const [error, request] = lines;
    expect(error).toMatchObject({ level: 50, msg: "unhandled error", err: { message: "boom" } });
    expect(request).toMatchObject({ msg: "request", path: "/test/boom", status: 500 });
    expect(error?.reqId).toBe(request?.reqId);
  });
});

describe("lazyRequestLogger", () => {
  it("logs, makes children and reports its level as pino's child of the same bindings", () => {
    const { logger, lines } = capturingLogger();
    const log = lazyRequestLogger(logger, { reqId: "req-7" }, {});
    expect(log.level).toBe("info");
    log.debug("below the level");
    log.warn({ attempt: 2 }, "retrying %s", "mail");
    log.child({ step: "send" }).error("failed");
    expect(lines).toEqual([
      expect.objectContaining({ level: 40, reqId: "req-7", attempt: 2, msg: "retrying mail" }),
      expect.objectContaining({ level: 50, reqId: "req-7", step: "send", msg: "failed" }),
    ]);
  });

  it("applies a level set on it", () => {
    const { logger, lines } = capturingLogger();
    const log = lazyRequestLogger(logger, { reqId: "req-8" }, {});
    log.level = "debug";
    log.debug("now shown");
    expect(lines).toEqual([
      expect.objectContaining({ level: 20, reqId: "req-8", msg: "now shown" }),
    ]);
    expect(logger.level).toBe("info");
  });
});
