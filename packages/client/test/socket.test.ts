import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { openAppDb, startTestApp, type TestApp } from "../../server/test/helpers.js";
import { PASSWORD } from "../../server/test/mfa-helpers.js";
import {
  LatchkeyClient,
  LatchkeySocket,
  type SocketOptions,
  type WebSocketConstructor,
} from "../src/index.js";
import { CookieJar } from "./cookie-jar.js";

/**
 * The server side of API.md "WebSocket: GET /ws", reduced to what the helper meets:
 * it selects `latchkey.v1`, checks the `bearer.<jwt>` entry against the real Latchkey
 * (GET /users/me), answers `authenticated`, or closes 4401 with the error code as the
 * reason, as the server does. Tests then push tokens, revoke, lock or drop connections.
 */
class ContractServer {
  readonly sockets: WebSocket[] = [];
  readonly offered: string[][] = [];
  readonly selected: string[] = [];
  #wss: WebSocketServer;
  #http = createServer();

  constructor(private readonly latchkeyUrl: string) {
    this.#wss = new WebSocketServer({
      server: this.#http,
      handleProtocols: (protocols) => (protocols.has("latchkey.v1") ? "latchkey.v1" : false),
    });
    this.#wss.on("connection", (ws, request) => void this.#open(ws, request));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#http.listen(0, "127.0.0.1", resolve));
    return `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}/ws`;
  }

  get last(): WebSocket {
    const ws = this.sockets.at(-1);
    if (!ws) throw new Error("no connection yet");
    return ws;
  }

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise((resolve) => this.#wss.close(resolve));
    await new Promise((resolve) => this.#http.close(resolve));
  }

  async #open(ws: WebSocket, request: IncomingMessage): Promise<void> {
    const protocols = (request.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim());
    this.offered.push(protocols);
    this.selected.push(ws.protocol);
    const token = protocols.find((p) => p.startsWith("bearer."))?.slice("bearer.".length);
    const res = await fetch(`${this.latchkeyUrl}/users/me`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    if (!res.ok) {
      ws.close(4401, ((await res.json()) as { code: string }).code);
      return;
    }
    const user = (await res.json()) as { id: string };
    this.sockets.push(ws);
    ws.send(JSON.stringify({ type: "authenticated", userId: user.id, sessionId: "s-1" }));
  }
}

let app: TestApp | undefined;
let server: ContractServer | undefined;
let lk: LatchkeyClient | undefined;
let socket: LatchkeySocket | undefined;
afterEach(async () => {
  socket?.close();
  lk?.close();
  await server?.close();
  await app?.close();
  app = server = lk = socket = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const until = async (check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
};

async function signedIn() {
  app = await startTestApp({ tokens: { delivery: "body" } });
  const baseUrl = await app.listen();
  server = new ContractServer(baseUrl);
  const url = await server.listen();
  const refreshes: string[] = [];
  const authorizations: string[] = [];
  lk = new LatchkeyClient({
    mode: "body",
    baseUrl,
    channelName: `ws-${randomBytes(6).toString("hex")}`,
    fetch: (input, init) => {
      const path = new URL(input instanceof Request ? input.url : input).pathname;
      if (path === "/auth/refresh") refreshes.push(path);
      authorizations.push(new Headers(init?.headers).get("authorization") ?? "");
      return fetch(input, init);
    },
  });
  const result = await lk.register({
    email: `ws-${randomBytes(4).toString("hex")}@example.com`,
    password: PASSWORD,
  });
  if (result.status !== "signed_in") throw new Error("expected a session");
  const events: string[] = [];
  const open = (options: SocketOptions = {}) => {
    socket = lk?.socket({
      url,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      minReconnectDelayMs: 20,
      maxReconnectDelayMs: 100,
      onAuthenticated: () => events.push("authenticated"),
      onRevoked: () => events.push("revoked"),
      onLocked: () => events.push("locked"),
      onMessage: (m) => events.push(`message:${JSON.stringify(m)}`),
      ...options,
    });
    return socket as LatchkeySocket;
  };
  return { app, server, lk, open, events, refreshes, authorizations, userId: result.user.id };
}

describe("LatchkeySocket", () => {
  it("signs in through the subprotocol and the server selects only latchkey.v1", async () => {
    const { server, open, events } = await signedIn();
    const ws = open();
    await until(() => ws.state === "open");
    expect(events).toEqual(["authenticated"]);
    expect(server.offered[0]?.[0]).toBe("latchkey.v1");
    expect(server.offered[0]?.[1]).toMatch(/^bearer\.ey/);
    expect(server.selected).toEqual(["latchkey.v1"]);
  });

  it("keeps an access token the server pushes and uses it for HTTP", async () => {
    const { server, lk, open, authorizations } = await signedIn();
    const ws = open();
    await until(() => ws.state === "open");
    // A genuine new access token of the same session (PATCH reissues one; `request` keeps nothing).
    const pushed = (
      await lk.request<{ accessToken: string }>("PATCH", "/users/me", { singleSession: false })
    ).accessToken;
    server.last.send(JSON.stringify({ type: "token", accessToken: pushed, expiresIn: 900 }));
    // The push lands asynchronously; each me() shows which token HTTP calls now carry.
    const deadline = Date.now() + 5000;
    while (!authorizations.includes(`Bearer ${pushed}`) && Date.now() < deadline) {
      await lk.me();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(authorizations).toContain(`Bearer ${pushed}`);
  });

  it("passes application messages on and reconnects after a dropped connection", async () => {
    const { server, open, events } = await signedIn();
    const ws = open();
    await until(() => ws.state === "open");
    server.last.send(JSON.stringify({ type: "chat", text: "hi" }));
    await until(() => events.includes('message:{"type":"chat","text":"hi"}'));
    server.last.terminate();
    await until(() => server.sockets.length === 2 && ws.state === "open");
    expect(events.filter((e) => e === "authenticated")).toHaveLength(2);
    expect(ws.send({ type: "chat", text: "back" })).toBe(true);
  });

  it("refreshes once when the handshake token has expired, then gets in", async () => {
    const { app, server, open, refreshes } = await signedIn();
    app.clock.advance(16 * 60_000); // the server's clock: the token this device holds is stale
    const ws = open();
    await until(() => ws.state === "open");
    expect(refreshes).toHaveLength(1);
    expect(server.offered).toHaveLength(2);
  });

  it("stops for good on session_revoked and close 4401", async () => {
    const { server, open, events, lk } = await signedIn();
    const ws = open();
    await until(() => ws.state === "open");
    server.last.send(JSON.stringify({ type: "session_revoked" }));
    server.last.close(4401, "session_revoked");
    await until(() => ws.state === "revoked");
    await new Promise((r) => setTimeout(r, 200)); // longer than the reconnect delay
    expect(server.offered).toHaveLength(1);
    expect(events.filter((e) => e === "revoked")).toHaveLength(1);
    await expect(lk.me()).rejects.toMatchObject({ status: 401 }); // the tokens are forgotten
  });

  it("waits on a screen lock (4423) until asked to reconnect", async () => {
    const { server, open, events } = await signedIn();
    const ws = open();
    await until(() => ws.state === "open");
    server.last.close(4423, "screen_locked");
    await until(() => ws.state === "locked");
    await new Promise((r) => setTimeout(r, 200));
    expect(server.offered).toHaveLength(1);
    expect(events).toContain("locked");
    ws.reconnect();
    await until(() => ws.state === "open" && server.sockets.length === 2);
  });
});

describe("LatchkeySocket attempts", () => {
  /** Records every socket made; none ever opens. */
  function recorder() {
    const made: Array<{ closed: boolean }> = [];
    class Recorded {
      readyState = 0;
      closed = false;
      onopen = null;
      onmessage = null;
      onclose = null;
      onerror = null;
      constructor() {
        made.push(this);
      }
      send() {}
      close() {
        this.closed = true;
      }
    }
    return { made, WebSocket: Recorded as unknown as WebSocketConstructor };
  }

  it("reconnect() while the first attempt awaits its credential leaves one socket, which close() closes", async () => {
    const { open } = await signedIn();
    const { made, WebSocket: Recorded } = recorder();
    const ws = open({ WebSocket: Recorded });
    ws.reconnect(); // the first attempt is still reading its token
    await until(() => made.length >= 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(made).toHaveLength(1);
    ws.close();
    expect(made.every((m) => m.closed)).toBe(true);
  });

  it("close() while the credential cannot be had stays closed", async () => {
    const { made, WebSocket: Recorded } = recorder();
    let asked = 0;
    const offline = () => {
      asked++;
      return Promise.reject(new Error("offline"));
    };
    const ws = new LatchkeySocket(
      "ws://127.0.0.1:1/ws",
      { credential: offline, refresh: offline, accept: async () => {}, ended: () => {} },
      { WebSocket: Recorded, minReconnectDelayMs: 20, maxReconnectDelayMs: 40 },
    );
    ws.close(); // while the first credential is still on its way
    await new Promise((r) => setTimeout(r, 200));
    expect(ws.state).toBe("closed");
    expect(asked).toBe(1); // no retry timer after close()
    expect(made).toHaveLength(0);
  });
});

describe("LatchkeySocket against the real GET /ws", () => {
  it("signs in, and hears at once when its session is revoked elsewhere", async () => {
    app = await startTestApp({ tokens: { delivery: "body" } });
    const baseUrl = await app.listen();
    lk = new LatchkeyClient({
      mode: "body",
      baseUrl,
      channelName: `ws-real-${randomBytes(6).toString("hex")}`,
    });
    const email = `ws-real-${randomBytes(4).toString("hex")}@example.com`;
    const result = await lk.register({ email, password: PASSWORD });
    if (result.status !== "signed_in") throw new Error("expected a session");
    const events: string[] = [];
    const ws = lk.socket({
      url: `${baseUrl.replace(/^http/, "ws")}/ws`,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      onAuthenticated: () => events.push("authenticated"),
      onRevoked: () => events.push("revoked"),
    });
    socket = ws;
    await until(() => events.includes("authenticated"));

    // Another device of the same user signs everyone out.
    const other = await fetch(`${baseUrl}/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ identifier: email, password: PASSWORD }),
    }).then((r) => r.json() as Promise<{ accessToken: string }>);
    const out = await fetch(`${baseUrl}/auth/logout/all`, {
      method: "POST",
      headers: { authorization: `Bearer ${other.accessToken}` },
    });
    expect(out.status).toBe(204);
    await until(() => events.includes("revoked"));
    expect(ws.state).toBe("revoked");
  });

  it("a locked session whose access token expired waits locked (refresh 423) until unlocked", async () => {
    app = await startTestApp({ tokens: { delivery: "body" } });
    const baseUrl = await app.listen();
    const refreshes: string[] = [];
    lk = new LatchkeyClient({
      mode: "body",
      baseUrl,
      channelName: `ws-real-${randomBytes(6).toString("hex")}`,
      fetch: (input, init) => {
        const path = new URL(input instanceof Request ? input.url : input).pathname;
        if (path === "/auth/refresh") refreshes.push(path);
        return fetch(input, init);
      },
    });
    const email = `ws-real-${randomBytes(4).toString("hex")}@example.com`;
    await lk.register({ email, password: PASSWORD });
    await lk.lock();
    app.clock.advance(16 * 60_000); // the handshake's token is refused: 4401 token_expired
    const events: string[] = [];
    const ws = lk.socket({
      url: `${baseUrl.replace(/^http/, "ws")}/ws`,
      WebSocket: WebSocket as unknown as WebSocketConstructor,
      minReconnectDelayMs: 20,
      maxReconnectDelayMs: 40,
      onAuthenticated: () => events.push("authenticated"),
      onLocked: () => events.push("locked"),
      onRevoked: () => events.push("revoked"),
    });
    socket = ws;

    // The refresh's 423 used to count as "unreachable": a refresh every reconnect delay.
    await until(() => ws.state === "locked");
    await sleep(200); // longer than the reconnect delay
    expect(refreshes).toHaveLength(1);
    expect(events).toEqual(["locked"]);

    await lk.unlock({ password: PASSWORD });
    ws.reconnect();
    await until(() => ws.state === "open");
    expect(events).toEqual(["locked", "authenticated"]);
  });

  /** Arranges a refusal of this session's refresh that no retry can cure, on the real server. */
  const refusals = {
    // The user's own rule, set from another device: this address is locked out.
    ip_not_allowed: (lk: LatchkeyClient) => lk.updateProfile({ allowedIps: ["192.0.2.1"] }),
    // Disabled by an operator in SQL, not through the admin API (which revokes: a 401).
    account_disabled: async (lk: LatchkeyClient, app: TestApp) => {
      const { id } = await lk.me();
      const db = await openAppDb(app);
      await db.kysely.updateTable("users").set({ disabled: 1 }).where("id", "=", id).execute();
      await db.close();
      app.svc.sessions.userChanged(id);
    },
  };

  it.each(Object.entries(refusals))(
    "a refresh refused with 403 %s stops the socket with that error instead of retrying",
    async (code, refuse) => {
      app = await startTestApp({ tokens: { delivery: "body" } });
      const baseUrl = await app.listen();
      const refreshes: number[] = [];
      const ended: string[] = [];
      lk = new LatchkeyClient({
        mode: "body",
        baseUrl,
        channelName: `ws-real-${randomBytes(6).toString("hex")}`,
        onSessionEnd: (reason) => ended.push(reason),
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          const path = new URL(input instanceof Request ? input.url : input).pathname;
          if (path === "/auth/refresh") refreshes.push(res.status);
          return res;
        },
      });
      await lk.register({
        email: `ws-real-${randomBytes(4).toString("hex")}@example.com`,
        password: PASSWORD,
      });
      await refuse(lk, app);
      app.clock.advance(16 * 60_000); // the handshake's token is refused: 4401 token_expired
      const events: string[] = [];
      const ws = lk.socket({
        url: `${baseUrl.replace(/^http/, "ws")}/ws`,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        minReconnectDelayMs: 20,
        maxReconnectDelayMs: 40,
        onAuthenticated: () => events.push("authenticated"),
        onRevoked: () => events.push("revoked"),
        onRefused: (err) => events.push(`refused:${err.status} ${err.code}`),
      });
      socket = ws;

      await until(() => ws.state === "closed");
      // It used to count the 403 as "unreachable": one refresh every reconnect delay.
      await sleep(300); // several reconnect delays
      expect(refreshes).toEqual([403]);
      expect(events).toEqual([`refused:403 ${code}`]);
      expect(ended).toEqual([]); // the session is not over: the rule may be lifted
    },
  );

  it.each([503, 429])(
    "a refresh answered %i (a proxy in front, an overloaded server) is retried with backoff until it passes",
    async (status) => {
      app = await startTestApp({ tokens: { delivery: "body" } });
      const baseUrl = await app.listen();
      const refreshes: number[] = [];
      lk = new LatchkeyClient({
        mode: "body",
        baseUrl,
        channelName: `ws-real-${randomBytes(6).toString("hex")}`,
        // What a reverse proxy answers while the server is busy: the first two refreshes.
        fetch: async (input, init) => {
          const path = new URL(input instanceof Request ? input.url : input).pathname;
          if (path !== "/auth/refresh") return fetch(input, init);
          const res =
            refreshes.length < 2
              ? new Response("busy", { status, headers: { "retry-after": "1" } })
              : await fetch(input, init);
          refreshes.push(res.status);
          return res;
        },
      });
      await lk.register({
        email: `ws-real-${randomBytes(4).toString("hex")}@example.com`,
        password: PASSWORD,
      });
      app.clock.advance(16 * 60_000);
      const events: string[] = [];
      const ws = lk.socket({
        url: `${baseUrl.replace(/^http/, "ws")}/ws`,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        minReconnectDelayMs: 20,
        maxReconnectDelayMs: 40,
        onAuthenticated: () => events.push("authenticated"),
        onRevoked: () => events.push("revoked"),
        onRefused: (err) => events.push(`refused:${err.code}`),
      });
      socket = ws;

      await until(() => ws.state === "open");
      expect(refreshes).toEqual([status, status, 200]);
      expect(events).toEqual(["authenticated"]);
    },
  );

  it("cookie mode: a handshake whose lk_access cookie aged out refreshes after auth_timeout and gets in", async () => {
    app = await startTestApp({
      tokens: { delivery: "cookie" },
      ws: { sweepIntervalMs: 20 } as never,
    });
    const baseUrl = await app.listen();
    const jar = new CookieJar("http://latchkey.test"); // an allowed Origin (the public URL)
    const ended: string[] = [];
    lk = new LatchkeyClient({
      mode: "cookie",
      baseUrl,
      fetch: jar.fetch,
      channelName: `ws-real-${randomBytes(6).toString("hex")}`,
      onSessionEnd: (reason) => ended.push(reason),
    });
    await lk.register({
      email: `ws-real-${randomBytes(4).toString("hex")}@example.com`,
      password: PASSWORD,
    });
    app.clock.advance(16 * 60_000);
    jar.drop("lk_access"); // its Max-Age ran out with the token: the handshake carries none
    /** A browser's handshake: the jar's cookies and the page's Origin. */
    class BrowserSocket extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols, {
          headers: { origin: jar.origin, cookie: jar.header(new URL(url)) },
        });
      }
    }
    const ws = lk.socket({
      url: `${baseUrl.replace(/^http/, "ws")}/ws`,
      WebSocket: BrowserSocket as unknown as WebSocketConstructor,
      minReconnectDelayMs: 20,
      maxReconnectDelayMs: 40,
    });
    socket = ws;

    // The server closes a socket that never authenticated (4401 auth_timeout) after 10 s.
    for (let i = 0; i < 50 && ws.state !== "open" && ws.state !== "revoked"; i++) {
      app.clock.advance(10_000);
      await sleep(100);
    }

    // It used to stop as revoked and report the session's end: a refresh cures it.
    expect(ws.state).toBe("open");
    expect(ended).toEqual([]);
    expect(jar.calls.filter((p) => p === "/auth/refresh")).toHaveLength(1);
  });
});
