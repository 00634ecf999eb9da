import { connect } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { lazyRequestLogger } from "../src/http/request-logger.js";
import {
  bearer,
  holdPasswordChecks,
  rawRequest,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";
import { openSocket } from "./ws-client.js";

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
    // Its confirmation mail is written to the outbox, and logged, after the answer.
    await app.svc.mailer.flush();
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

describe("request log: WebSocket handshakes on /ws", () => {
  const { logger, lines } = capturingLogger();
  let app: TestApp;
  let accessToken: string;
  const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
  const handshake = (headers: Record<string, string | undefined> = {}) =>
    `GET /ws?ticket=one-time HTTP/1.1\r\nHost: x\r\n${Object.entries({
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-key": KEY,
      "sec-websocket-version": "13",
      ...headers,
    })
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("")}\r\n`;
  /** The request lines written so far, once `count` of them are in. */
  const requestLines = async (count: number) => {
    await vi.waitFor(() => expect(lines.filter((l) => l.msg === "request")).toHaveLength(count));
    await new Promise((r) => setTimeout(r, 50)); // and no second line for the same request
    return lines.filter((l) => l.msg === "request");
  };
  const expectLine = (line: Line | undefined, status: number) =>
    expect(line).toEqual({
      level: 30,
      time: expect.any(Number),
      pid: expect.any(Number),
      hostname: expect.any(String),
      msg: "request",
      reqId: expect.any(String),
      method: "GET",
      path: "/ws",
      status,
      ms: expect.any(Number),
      ip: "127.0.0.1",
    });

  beforeAll(async () => {
    app = await startTestApp({ ws: { maxPendingPerIp: 1 } as never }, { logger });
    // Holds a handshake back, so that its client can leave before it is answered.
    app.http.addHook("onRequest", async (request) => {
      if (request.headers["x-test-hold"]) await new Promise((r) => setTimeout(r, 100));
    });
    await app.listen();
    ({ accessToken } = await registerUser(app));
  });
  afterAll(() => app.close());
  beforeEach(() => {
    lines.length = 0;
  });

  it("logs an accepted handshake once, 101, and never its token", async () => {
    const client = await openSocket(app.url, {
      protocols: ["latchkey.v1", `bearer.${accessToken}`],
    });
    expect(await client.next()).toMatchObject({ type: "authenticated" });
    client.ws.close();
    await new Promise((r) => client.ws.once("close", r));
    const [line] = await requestLines(1);
    expectLine(line, 101);
    expect(JSON.stringify(lines)).not.toContain(accessToken.split(".")[2]);
  });

  it("logs a handshake with a bad token (accepted, then closed 4401) once, 101", async () => {
    const client = await openSocket(app.url, { protocols: ["latchkey.v1", "bearer.forged"] });
    expect((await client.closed()).code).toBe(4401);
    expectLine((await requestLines(1))[0], 101);
  });

  it("logs a socket over the IP's pending cap (accepted, then closed 4429) once, 101", async () => {
    const first = await openSocket(app.url);
    const second = await openSocket(app.url);
    expect(await second.closed()).toEqual({ code: 4429, reason: "too_many_sockets" });
    first.ws.terminate();
    const logged = await requestLines(2);
    expectLine(logged[0], 101);
    expectLine(logged[1], 101);
  });

  it("logs each refused handshake once, with the status it was answered", async () => {
    const answers = [
      await rawRequest(app, handshake({ "sec-websocket-key": undefined })),
      await rawRequest(app, handshake({ "sec-websocket-protocol": "latchkey.v1,,x" })),
      await rawRequest(app, handshake({ "sec-websocket-version": "12" })),
      await rawRequest(app, handshake({ upgrade: "h2c" })),
      await rawRequest(
        app,
        handshake({ cookie: `lk_access=${accessToken}`, origin: "https://evil.example" }),
      ),
      await rawRequest(app, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ].map((answer) => Number(answer.split(" ")[1]));
    expect(answers).toEqual([400, 400, 426, 400, 403, 400]);
    const logged = await requestLines(6);
    logged.forEach((line, i) => {
      expectLine(line, answers[i] as number);
    });
    expect(new Set(logged.map((l) => l.reqId)).size).toBe(6);
  });

  it("logs a handshake whose client left before the answer once, 499", async () => {
    const url = new URL(app.url);
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.end(handshake({ "x-test-hold": "1" }));
    });
    socket.on("data", () => {});
    socket.on("error", () => {});
    expectLine((await requestLines(1))[0], 499);
    socket.destroy();
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

describe("request log: requests that arrive while the server closes", () => {
  const PASSWORD = "correct horse battery";
  const HANDSHAKE =
    "GET /ws?x=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

  it("answers them 503 service_unavailable as problem+json, each with its own request line", async () => {
    // Fastify's shortcut answered a bare JSON body and wrote no request line.
    const { logger, lines } = capturingLogger();
    const app = await startTestApp({}, { logger });
    let closing: Promise<void> | undefined;
    try {
      const url = new URL(await app.listen());
      const { user } = await registerUser(app, { password: PASSWORD });
      const held = holdPasswordChecks(app);
      const body = JSON.stringify({ identifier: user.email, password: PASSWORD });
      const login =
        `POST /auth/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\n\r\n${body}`;
      // Two connections, each with a sign-in in flight, so the close waits for them.
      const connections = [0, 1].map(() => {
        const socket = connect(Number(url.port), url.hostname);
        const state = { socket, answer: "" };
        socket.on("data", (chunk) => {
          state.answer += chunk.toString("latin1");
        });
        socket.write(login);
        return state;
      });
      await held.checking;
      await vi.waitFor(() => expect(app.svc.hasher.verify).toHaveBeenCalledTimes(2));
      lines.length = 0;
      closing = app.close();
      await new Promise((r) => setTimeout(r, 40)); // the close has begun
      const [http, ws] = connections as [(typeof connections)[0], (typeof connections)[0]];
      http.socket.write("GET /users/me?code=secret HTTP/1.1\r\nHost: x\r\n\r\n");
      ws.socket.write(HANDSHAKE);
      await new Promise((r) => setTimeout(r, 40)); // both have arrived
      held.release();
      for (const connection of connections) {
        await vi.waitFor(() => expect(connection.socket.readableEnded).toBe(true));
        const { answer } = connection;
        expect(answer.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 503"]);
        const shed = answer.slice(answer.lastIndexOf("HTTP/1.1 503"));
        const [head = "", text = ""] = shed.split("\r\n\r\n");
        expect(head).toMatch(/^content-type: application\/problem\+json$/im);
        expect(head).toMatch(/^connection: close$/im);
        expect(head).toMatch(/^x-content-type-options: nosniff$/im);
        expect(JSON.parse(text)).toEqual({
          type: "urn:latchkey:error:service_unavailable",
          title: "Service Unavailable",
          status: 503,
          detail: expect.any(String),
          code: "service_unavailable",
        });
      }
      held.restore();
      await closing;
      const requests = lines.filter((l) => l.msg === "request");
      expect(requests.map((l) => [l.method, l.path, l.status]).sort()).toEqual([
        ["GET", "/users/me", 503],
        ["GET", "/ws", 503],
        ["POST", "/auth/login", 200],
        ["POST", "/auth/login", 200],
      ]);
      for (const line of requests)
        expect(line).toMatchObject({ ip: "127.0.0.1", ms: expect.any(Number) });
      expect(new Set(requests.map((l) => l.reqId)).size).toBe(4);
      expect(JSON.stringify(lines)).not.toContain("secret");
      // Not Fastify's own line for its shortcut ("request aborted - refusing to accept ...").
      expect(lines.filter((l) => String(l.msg).includes("refusing"))).toEqual([]);
    } finally {
      await (closing ?? app.close());
    }
  });
});
