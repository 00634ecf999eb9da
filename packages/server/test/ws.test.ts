import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ConfigInput } from "../src/config/schema.js";
import {
  bearer,
  holdPasswordChecks,
  json,
  parseRaw,
  rawRequest,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";
import { stepUpToken } from "./mfa-helpers.js";
import { openSocket, sweeps, type WsClient, within } from "./ws-client.js";

const PASSWORD = "correct horse battery";
const MINUTE = 60_000;
let app: TestApp;
const open: WsClient[] = [];

/** Deadlines are checked every 20 ms of real time; the clock itself only moves when told. */
async function start(ws: Partial<ConfigInput["ws"]> = {}, rateLimit = {}) {
  app = await startTestApp({
    ws: { sweepIntervalMs: 20, ...ws } as ConfigInput["ws"],
    rateLimit,
  });
  await app.listen();
}
beforeEach(() => start());
afterEach(async () => {
  for (const client of open.splice(0)) client.ws.terminate();
  await app.close();
});

async function socket(options: Parameters<typeof openSocket>[1] = {}): Promise<WsClient> {
  const client = await openSocket(app.url, options);
  open.push(client);
  return client;
}
const withBearer = (accessToken: string) =>
  socket({ protocols: ["latchkey.v1", `bearer.${accessToken}`] });

async function login(email: string) {
  const res = await app.http.inject({
    method: "POST",
    url: "/auth/login",
    ...json({ identifier: email, password: PASSWORD }),
  });
  expect(res.statusCode).toBe(200);
  return res.json<{ accessToken: string; refreshToken: string }>();
}
const me = (token: string) => app.http.inject({ url: "/users/me", headers: bearer(token) });

describe("GET /ws: ways in", () => {
  it("takes the access token from the subprotocol list, selecting latchkey.v1 only", async () => {
    const { accessToken, user } = await registerUser(app);
    const client = await withBearer(accessToken);
    expect(client.ws.protocol).toBe("latchkey.v1");
    expect(client.protocolHeader).toBe("latchkey.v1");
    const hello = await client.next();
    expect(hello).toEqual({
      type: "authenticated",
      userId: user.id,
      sessionId: expect.any(String),
    });
  });

  it("closes 4401 with the error code when the handshake token is bad or expired", async () => {
    const { accessToken } = await registerUser(app);
    const forged = await withBearer(`${accessToken.slice(0, -4)}AAAA`);
    expect(await forged.closed()).toEqual({ code: 4401, reason: "invalid_token" });
    app.clock.advance(16 * MINUTE);
    const expired = await withBearer(accessToken);
    expect(await expired.closed()).toEqual({ code: 4401, reason: "token_expired" });
  });

  it("accepts { type: auth, accessToken } on an open socket", async () => {
    const { accessToken, user } = await registerUser(app);
    const client = await socket();
    client.send({ type: "auth", accessToken });
    expect(await client.next()).toMatchObject({ type: "authenticated", userId: user.id });
    client.send({ type: "ping" });
    expect(await client.next()).toEqual({ type: "pong" });
  });

  it("rotates a refresh token sent as { type: auth, refreshToken } exactly as /auth/refresh", async () => {
    const { refreshToken, user } = await registerUser(app);
    const client = await socket();
    client.send({ type: "auth", refreshToken });
    const hello = await client.next();
    expect(hello).toMatchObject({ type: "authenticated", userId: user.id, expiresIn: 900 });
    expect(hello.refreshToken).not.toBe(refreshToken);
    expect((await me(hello.accessToken as string)).statusCode).toBe(200);
    // The old token is spent: within the grace window it yields the same successor.
    const twin = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken }),
    });
    expect(twin.json().refreshToken).toBe(hello.refreshToken);
  });

  it("detects refresh-token reuse on the message flow and ends the session's sockets", async () => {
    const { refreshToken } = await registerUser(app);
    const first = await socket();
    first.send({ type: "auth", refreshToken });
    expect(await first.next()).toMatchObject({ type: "authenticated" });
    app.clock.advance(11_000); // past the 10 s grace window
    const thief = await socket();
    thief.send({ type: "auth", refreshToken });
    expect(await thief.closed()).toEqual({ code: 4401, reason: "refresh_token_reused" });
    expect(await first.next()).toEqual({ type: "session_revoked" });
    expect(await first.closed()).toEqual({ code: 4401, reason: "session_revoked" });
  });

  it("accepts the lk_access cookie only from an allowed Origin (CSWSH)", async () => {
    const { accessToken } = await registerUser(app);
    const cookie = `lk_access=${accessToken}`;
    await expect(socket({ headers: { cookie, origin: "https://evil.example" } })).rejects.toThrow(
      "HTTP 403",
    );
    await expect(socket({ headers: { cookie } })).rejects.toThrow("HTTP 403");
    const client = await socket({ headers: { cookie, origin: "http://latchkey.test" } });
    expect(await client.next()).toMatchObject({ type: "authenticated" });
    // No access token is pushed into a cookie socket: the next message answers the ping.
    app.clock.advance(14 * MINUTE + 1000);
    await sweeps();
    client.send({ type: "ping" });
    expect(await client.next()).toEqual({ type: "pong" });
  });

  it("lets an auth message replace the cookie, so a page holding tokens gets pushes", async () => {
    const { accessToken, refreshToken, user } = await registerUser(app);
    const client = await socket({
      headers: { cookie: `lk_access=${accessToken}`, origin: "http://latchkey.test" },
    });
    expect(await client.next()).toMatchObject({ type: "authenticated", userId: user.id });
    client.send({ type: "auth", refreshToken });
    const hello = await client.next();
    expect(hello).toMatchObject({ type: "authenticated", userId: user.id, expiresIn: 900 });
    expect(hello.refreshToken).toEqual(expect.any(String));
    app.clock.advance(14 * MINUTE + 1000);
    expect(await client.next()).toMatchObject({ type: "token", expiresIn: 900 });
    client.send({ type: "auth", accessToken }); // a second auth on a token socket is an error
    expect(await client.closed()).toEqual({ code: 4400, reason: "unexpected_message" });
  });
});

describe("GET /ws: handshakes", () => {
  const KEY = "dGhlIHNhbXBsZSBub25jZQ=="; // RFC 6455 §1.3's example
  /** A raw handshake: a valid one, with `changes` applied (undefined leaves a header out). */
  const handshake = (
    changes: Record<string, string | undefined> = {},
    method = "GET",
    url = "/ws",
  ) =>
    `${method} ${url} HTTP/1.1\r\nHost: x\r\n${Object.entries({
      connection: "Upgrade",
      upgrade: "websocket",
      "sec-websocket-key": KEY,
      "sec-websocket-version": "13",
      ...changes,
    })
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("")}\r\n`;
  /** Connections the server still holds: a refused upgrade must not stay among them. */
  const serverConnections = () =>
    new Promise<number>((resolve, reject) =>
      app.http.server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
    );
  const noneLeft = () => vi.waitFor(async () => expect(await serverConnections()).toBe(0));
  const expectRefused = (answer: string, statusLine: string, header: string) => {
    const { head, body } = parseRaw(answer);
    expect(head.split("\r\n")[0]).toBe(statusLine);
    expect(head).toMatch(/^content-type: application\/problem\+json\b/im);
    expect(head).toMatch(/^connection: .*close$/im);
    expect(body).toMatchObject({
      type: "urn:latchkey:error:validation_failed",
      status: Number(statusLine.split(" ")[1]),
      code: "validation_failed",
      errors: [{ path: header, message: expect.any(String) }],
    });
    return head;
  };

  it("refuses a malformed handshake 400 as problem+json naming the header, then closes", async () => {
    const token = "bearer.eyJhbGciOiJFZERTQSJ9.e30.c2lnbmF0dXJl";
    for (const [changes, header] of [
      [{ "sec-websocket-key": undefined }, "headers.sec-websocket-key"],
      [{ "sec-websocket-key": "not-a-16-byte-nonce" }, "headers.sec-websocket-key"],
      [{ "sec-websocket-protocol": "latchkey.v1,,other" }, "headers.sec-websocket-protocol"],
      [
        { "sec-websocket-protocol": `latchkey.v1, ${token}, ${token}` },
        "headers.sec-websocket-protocol",
      ],
    ] as const) {
      const answer = await rawRequest(app, handshake(changes));
      expectRefused(answer, "HTTP/1.1 400 Bad Request", header);
      expect(answer).not.toContain(token); // a duplicated entry is not quoted back
    }
    await noneLeft();
  });

  it("answers a version it does not speak 426, naming the ones it does, then closes", async () => {
    for (const version of [undefined, "12", "14"]) {
      const answer = await rawRequest(app, handshake({ "sec-websocket-version": version }));
      const head = expectRefused(
        answer,
        "HTTP/1.1 426 Upgrade Required",
        "headers.sec-websocket-version",
      );
      expect(head).toMatch(/^sec-websocket-version: 13, 8$/im);
      expect(head).toMatch(/^upgrade: websocket$/im);
    }
    await noneLeft();
  });

  it("serves what is no WebSocket handshake as plain HTTP problem+json, then closes", async () => {
    // A POST got its 404 but kept its socket for good.
    const post = parseRaw(await rawRequest(app, handshake({ "content-length": "0" }, "POST")));
    expect(post.head).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(post.body).toMatchObject({ status: 404, code: "not_found" });
    expectRefused(
      await rawRequest(app, handshake({ upgrade: "h2c" })),
      "HTTP/1.1 400 Bad Request",
      "headers.upgrade",
    );
    await noneLeft();
    const plain = await app.http.inject({ url: "/ws" });
    expect(plain.statusCode).toBe(400);
    expect(plain.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(plain.json()).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "headers.upgrade" }],
    });
  });

  it("still upgrades a valid handshake as ws takes it, the bearer subprotocol included", async () => {
    const url = new URL(app.url);
    /** What a raw handshake gets back once `expected` has arrived; the socket is then dropped. */
    const upgrade = async (request: string, expected: string) => {
      const socket = connect(Number(url.port), url.hostname);
      let answer = "";
      socket.on("data", (chunk) => {
        answer += chunk.toString("latin1");
      });
      socket.write(request);
      await vi.waitFor(() => expect(answer).toContain(expected)).finally(() => socket.destroy());
      expect(answer).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
      return answer;
    };
    const { accessToken, user } = await registerUser(app);
    const withToken = handshake({ "sec-websocket-protocol": `latchkey.v1, bearer.${accessToken}` });
    const answer = await upgrade(withToken, `"userId":"${user.id}"`);
    expect(answer).toMatch(/^sec-websocket-protocol: latchkey\.v1$/im);
    expect(answer).not.toContain(accessToken);
    // ws's own leniency stays: the Upgrade token's case, version 8, a query string.
    const lenient = handshake(
      { upgrade: "WebSocket", "sec-websocket-version": "8" },
      "GET",
      "/ws?x=1",
    );
    await upgrade(lenient, "\r\n\r\n");
  });
});

describe("GET /ws: pipelined behind a request in flight", () => {
  const HANDSHAKE =
    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

  /**
   * Sends a sign-in and `pipelined` on one connection; the sign-in is held until `meanwhile`
   * has run and the pipelined request has arrived.
   */
  async function pipeline(
    email: string,
    pipelined: string,
    expected: string,
    meanwhile: () => unknown = () => {},
  ) {
    const held = holdPasswordChecks(app);
    const url = new URL(app.url);
    const socket = connect(Number(url.port), url.hostname);
    let answer = "";
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
    });
    const body = JSON.stringify({ identifier: email, password: PASSWORD });
    socket.write(
      `POST /auth/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\n\r\n${body}`,
    );
    await held.checking;
    await meanwhile();
    socket.write(pipelined);
    await sweeps(2); // the pipelined request has been parsed and handed over by now
    held.release();
    await vi.waitFor(() => expect(answer).toContain(expected)).finally(() => socket.destroy());
    held.restore();
    return answer;
  }

  it("answers a Connection: Upgrade request after the response before it, in order", async () => {
    // It crashed the process: the upgrade was handed over while the sign-in held the socket.
    const { user } = await registerUser(app);
    const answer = await pipeline(
      user.email,
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
      '"status":"ok"',
    );
    expect(answer.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 200"]);
    expect(answer.indexOf('"accessToken"')).toBeLessThan(answer.indexOf('"status":"ok"'));
    expect((await app.http.inject({ url: "/healthz" })).statusCode).toBe(200);
  });

  it("upgrades a WebSocket handshake once the response before it is out", async () => {
    const { user, accessToken } = await registerUser(app);
    const handshake = `${HANDSHAKE}Sec-WebSocket-Protocol: latchkey.v1, bearer.${accessToken}\r\n\r\n`;
    const answer = await pipeline(user.email, handshake, `"userId":"${user.id}"`);
    expect(answer.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 101"]);
  });

  it("answers a handshake that arrives while the server closes 503, and the close ends", async () => {
    // It went unanswered, and held the connection (so the close) for good: the plugin
    // stops listening for upgrades as the server starts closing.
    const { user } = await registerUser(app);
    let closing: Promise<void> | undefined;
    const answer = await pipeline(user.email, `${HANDSHAKE}\r\n`, "HTTP/1.1 503", async () => {
      closing = app.close();
      await sweeps(2);
    });
    expect(answer.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 503"]);
    await within(closing ?? Promise.resolve(), "the end of the close");
    await start(); // for afterEach
  });
});

describe("GET /ws: lifetime", () => {
  it("closes an unauthenticated socket after 10 s on the injectable clock", async () => {
    const client = await socket();
    app.clock.advance(9_000);
    await sweeps();
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    app.clock.advance(1_000);
    expect(await client.closed()).toEqual({ code: 4401, reason: "auth_timeout" });
  });

  it("pushes a new access token before the old one expires", async () => {
    const { accessToken } = await registerUser(app);
    const client = await withBearer(accessToken);
    await client.next();
    app.clock.advance(13 * MINUTE); // heartbeats only
    await sweeps();
    app.clock.advance(MINUTE + 1000); // 14 min: a minute before expiry
    const pushed = await client.next();
    expect(pushed).toEqual({ type: "token", accessToken: expect.any(String), expiresIn: 900 });
    expect(pushed.accessToken).not.toBe(accessToken);
    app.clock.advance(2 * MINUTE); // the first token has expired; its successor lives
    expect((await me(accessToken)).json()).toMatchObject({ code: "token_expired" });
    expect((await me(pushed.accessToken as string)).statusCode).toBe(200);
  });

  it("sends session_revoked and closes 4401 at once when another session revokes it", async () => {
    const { accessToken } = await registerUser(app, { email: "ws@example.com" });
    const client = await withBearer(accessToken);
    const { sessionId } = await client.next();
    const other = await login("ws@example.com");
    const revoked = await app.http.inject({
      method: "DELETE",
      url: `/sessions/${sessionId}`,
      headers: bearer(other.accessToken),
    });
    expect(revoked.statusCode).toBe(204);
    // No clock movement: the revocation bus, not a heartbeat, closed it.
    expect(await client.next()).toEqual({ type: "session_revoked" });
    expect(await client.closed()).toEqual({ code: 4401, reason: "session_revoked" });
  });

  it("closes every socket of the user on logout/all from another session", async () => {
    const { accessToken } = await registerUser(app, { email: "all@example.com" });
    const a = await withBearer(accessToken);
    const b = await socket();
    b.send({ type: "auth", accessToken });
    await a.next();
    await b.next();
    const other = await login("all@example.com");
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout/all",
      headers: bearer(other.accessToken),
    });
    expect(res.statusCode).toBe(204);
    for (const client of [a, b]) {
      expect(await client.next()).toEqual({ type: "session_revoked" });
      expect((await client.closed()).code).toBe(4401);
    }
  });

  it("closes the other sessions' sockets on a password change (a revocation inside a transaction)", async () => {
    const { accessToken } = await registerUser(app, { email: "pw@example.com" });
    const client = await withBearer(accessToken);
    await client.next();
    const other = await login("pw@example.com");
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/password/change",
      headers: {
        ...bearer(other.accessToken),
        "x-step-up-token": await stepUpToken(app, other.accessToken),
        "content-type": "application/json",
      },
      payload: JSON.stringify({ currentPassword: PASSWORD, newPassword: "a brand new passphrase" }),
    });
    expect(res.statusCode).toBe(200);
    expect(await client.next()).toEqual({ type: "session_revoked" });
    expect((await client.closed()).code).toBe(4401);
  });

  it("closes the sockets of a deleted account (a user event)", async () => {
    const { accessToken } = await registerUser(app);
    const client = await withBearer(accessToken);
    await client.next();
    const res = await app.http.inject({
      method: "DELETE",
      url: "/users/me",
      headers: { ...bearer(accessToken), "x-step-up-token": await stepUpToken(app, accessToken) },
    });
    expect(res.statusCode).toBe(204);
    expect(await client.next()).toEqual({ type: "session_revoked" });
    expect(await client.closed()).toEqual({ code: 4401, reason: "session_revoked" });
  });

  it("closes 4403 when the socket's IP leaves allowedIps", async () => {
    const { accessToken } = await registerUser(app);
    const client = await withBearer(accessToken);
    await client.next();
    // The change comes from 192.0.2.7, which the new list allows; the socket's loopback does not.
    const res = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      remoteAddress: "192.0.2.7",
      ...json({ allowedIps: ["192.0.2.0/24"] }),
      headers: { ...bearer(accessToken), "content-type": "application/json" },
    });
    expect(res.statusCode).toBe(200);
    expect(await client.closed()).toEqual({ code: 4403, reason: "ip_not_allowed" });
  });

  it("closes 4423 when the session is locked, at once", async () => {
    const { accessToken } = await registerUser(app);
    const client = await withBearer(accessToken);
    await client.next();
    const lock = await app.http.inject({
      method: "POST",
      url: "/sessions/lock",
      headers: bearer(accessToken),
    });
    expect(lock.statusCode).toBe(204);
    expect(await client.closed()).toEqual({ code: 4423, reason: "screen_locked" });
  });

  it("closes 4423 on the heartbeat once the session idles past screenLockMinutes", async () => {
    const { accessToken } = await registerUser(app);
    const patched = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      ...json({ screenLockMinutes: 5 }),
      headers: { ...bearer(accessToken), "content-type": "application/json" },
    });
    const client = await withBearer(patched.json().accessToken);
    await client.next();
    app.clock.advance(4 * MINUTE); // heartbeats pass: an open socket is not activity
    await sweeps();
    expect(client.ws.readyState).toBe(client.ws.OPEN);
    app.clock.advance(MINUTE + 1000);
    expect(await client.closed()).toEqual({ code: 4423, reason: "screen_locked" });
  });
});

describe("GET /ws: limits", () => {
  it("closes 4400 on a malformed or unexpected message and 1009 on an oversized one", async () => {
    const garbage = await socket();
    garbage.send("not json");
    expect(await garbage.closed()).toEqual({ code: 4400, reason: "invalid_message" });
    const early = await socket();
    early.send({ type: "ping" });
    expect(await early.closed()).toEqual({ code: 4400, reason: "unexpected_message" });
    const big = await socket();
    big.send({ type: "auth", accessToken: "x".repeat(10_000) });
    expect((await big.closed()).code).toBe(1009);
  });

  it("closes 4429 a socket that sends more than 60 messages in 10 s", async () => {
    // There was no limit: four sockets of one user sent ~200k pings a second, each parsed
    // and answered, and GET /healthz took up to 2.6 s meanwhile.
    const { accessToken } = await registerUser(app);
    const client = await socket();
    client.send({ type: "auth", accessToken });
    expect(await client.next()).toMatchObject({ type: "authenticated" });
    for (let i = 0; i < 70; i++) client.send({ type: "ping" });
    for (let i = 0; i < 59; i++) expect(await client.next()).toEqual({ type: "pong" });
    expect(await client.closed()).toEqual({ code: 4429, reason: "rate_limited" });
  });

  it("caps sockets per session: a new one closes the oldest with 4429", async () => {
    await app.close();
    await start({ maxSocketsPerSession: 2 });
    const { accessToken } = await registerUser(app);
    const first = await withBearer(accessToken);
    await first.next();
    const second = await withBearer(accessToken);
    await second.next();
    const third = await withBearer(accessToken);
    await third.next();
    expect(await first.closed()).toEqual({ code: 4429, reason: "too_many_sockets" });
    expect(second.ws.readyState).toBe(second.ws.OPEN);
  });

  it("caps sockets not yet authenticated per IP: one more closes 4429", async () => {
    await app.close();
    await start({ maxPendingPerIp: 2 });
    const { accessToken } = await registerUser(app);
    const first = await socket();
    const second = await socket();
    const third = await socket();
    expect(await third.closed()).toEqual({ code: 4429, reason: "too_many_sockets" });
    // An authenticated socket no longer counts, nor does one the server closed.
    first.send({ type: "auth", accessToken });
    expect(await first.next()).toMatchObject({ type: "authenticated" });
    second.ws.send("not a message"); // the server closes it (4400), freeing its slot first
    expect((await second.closed()).code).toBe(4400);
    const fourth = await socket();
    const fifth = await socket();
    fifth.send({ type: "auth", accessToken });
    expect(await fifth.next()).toMatchObject({ type: "authenticated" });
    fourth.send({ type: "auth", accessToken });
    expect(await fourth.next()).toMatchObject({ type: "authenticated" });
  });

  it("limits failed authentications per IP", async () => {
    await app.close();
    await start({}, { publicPerIp: 2 });
    for (let i = 0; i < 2; i++) {
      const client = await socket();
      client.send({ type: "auth", refreshToken: "not-a-refresh-token" });
      expect((await client.closed()).code).toBe(4401);
    }
    const { accessToken } = await registerUser(app);
    const blocked = await withBearer(accessToken);
    expect(await blocked.closed()).toEqual({ code: 4429, reason: "rate_limited" });
  });
});
