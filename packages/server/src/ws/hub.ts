import type { RawData, WebSocket } from "ws";
import type { CacheEvent } from "../cache/revocation-bus.js";
import { AuthError, ERROR_STATUS } from "../domain/errors.js";
import { accessTokenFor } from "../flows/issue-tokens.js";
import type { ClientInfo, Services } from "../services.js";
import { Connection } from "./connection.js";
import { PendingByIp } from "./pending-by-ip.js";
import {
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL_ERROR,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TOO_MANY,
  CLOSE_UNAUTHENTICATED,
  closeCodeFor,
  parseClientMessage,
  type SocketCredential,
} from "./protocol.js";
import { authenticateSocket, checkSocketSession, pushTime } from "./socket-auth.js";
import { SocketIndex } from "./socket-index.js";

/**
 * Client messages a socket may send per window of real time. A client sends one `auth`
 * and the odd `ping`; each message costs a parse and most an answer, so a socket pouring
 * them in held the event loop (four of them sent ~200k pings a second on two cores, and
 * GET /healthz took up to 2.6 s), and one that never read its answers made them pile up
 * in memory. Past the limit it is closed 4429.
 */
const MAX_MESSAGES_PER_WINDOW = 60;
const MESSAGE_WINDOW_MS = 10_000;

/**
 * Every open socket of this node. Deadlines (auth timeout, heartbeat, token push)
 * are clock times checked by one sweep every `sweepIntervalMs`, so tests move the
 * injectable clock instead of waiting; revocations arrive on the bus and close
 * the session's sockets at once.
 */
export class SocketHub {
  private readonly all = new Set<Connection>();
  private readonly index: SocketIndex;
  private readonly pending: PendingByIp;
  private readonly timer: NodeJS.Timeout;
  /** Counts session and user events, to catch one that raced an authentication. */
  private events = 0;

  constructor(private readonly svc: Services) {
    const { ws } = svc.config;
    this.index = new SocketIndex(ws.maxSocketsPerSession, ws.maxSocketsPerUser);
    this.pending = new PendingByIp(ws.maxPendingPerIp);
    svc.bus.subscribe((event) => this.onCacheEvent(event));
    this.timer = setInterval(() => this.sweep(), ws.sweepIntervalMs);
    this.timer.unref();
  }

  open(socket: WebSocket, client: ClientInfo, credential: SocketCredential | undefined): void {
    const conn = new Connection(socket, client, this.svc.clock.now());
    this.all.add(conn);
    socket.on("message", (data: RawData, isBinary: boolean) =>
      this.onMessage(conn, data, isBinary),
    );
    socket.on("pong", () => {
      conn.pingUnansweredSince = undefined;
    });
    socket.on("close", () => {
      conn.state = "closed";
      this.all.delete(conn);
      this.index.remove(conn);
      this.pending.settle(conn);
    });
    // Its slot frees as soon as it is closed, not when the peer ends the close handshake
    // (which a client that never answers stretches to ws's 30 s timeout).
    conn.onServerClose = () => this.pending.settle(conn);
    if (!this.pending.admit(conn)) {
      conn.close(CLOSE_TOO_MANY, "too_many_sockets");
      return;
    }
    if (credential) void this.authenticate(conn, credential);
  }

  /** Server shutdown: clients reconnect elsewhere (1001). */
  stop(): void {
    clearInterval(this.timer);
    for (const conn of this.all) conn.close(CLOSE_GOING_AWAY, "server_shutdown");
  }

  private onMessage(conn: Connection, data: RawData, isBinary: boolean): void {
    if (conn.closed) return; // frames still arriving after we closed it
    if (!conn.countMessage(MAX_MESSAGES_PER_WINDOW, MESSAGE_WINDOW_MS)) {
      conn.close(CLOSE_TOO_MANY, "rate_limited");
      return;
    }
    const message = parseClientMessage(data, isBinary);
    if (message?.type === "auth" && conn.state === "waiting") {
      void this.authenticate(conn, message.credential);
    } else if (message?.type === "auth" && conn.state === "open" && conn.byCookie) {
      // A same-origin page that holds tokens (delivery "both" also sets the cookie) and
      // authenticates as on any socket: its message replaces the cookie, and it gets pushes.
      this.index.remove(conn);
      conn.byCookie = false;
      conn.waitingSince = this.svc.clock.now();
      void this.authenticate(conn, message.credential);
    } else if (message?.type === "ping" && conn.state === "open") {
      conn.send({ type: "pong" });
    } else {
      conn.close(CLOSE_PROTOCOL_ERROR, message ? "unexpected_message" : "invalid_message");
    }
  }

  /** One attempt per socket: a failure closes it and counts against the IP. */
  private async authenticate(conn: Connection, credential: SocketCredential): Promise<void> {
    conn.state = "authenticating";
    const { ip } = conn.client;
    const epoch = this.events;
    try {
      if ((await this.svc.limits.wsAuthPerIp.blockedFor(ip)) > 0) {
        throw new AuthError("rate_limited", "Too many failed WebSocket authentications");
      }
      const session = await authenticateSocket(this.svc, credential, conn.client);
      if (conn.closed) return; // the client left while we checked
      conn.state = "open";
      this.pending.settle(conn);
      conn.userId = session.userId;
      conn.sessionId = session.sessionId;
      conn.pushAt = session.pushAt;
      conn.byCookie = credential.kind === "access" && credential.via === "cookie";
      conn.nextBeatAt = this.svc.clock.now() + this.svc.config.ws.heartbeatSeconds * 1000;
      for (const old of this.index.add(conn)) old.close(CLOSE_TOO_MANY, "too_many_sockets");
      conn.send(session.greeting);
      // A revocation published while we checked found no socket to close: look again.
      if (this.events !== epoch) this.recheckNow(conn);
    } catch (err) {
      if (err instanceof AuthError && err.code !== "rate_limited") {
        await this.svc.limits.wsAuthPerIp.hit(ip).catch(() => {});
      }
      this.fail(conn, err);
    }
  }

  /** Ends a socket for `err`; an authenticated one hears `session_revoked` before a 4401. */
  private fail(conn: Connection, err: unknown): void {
    if (!(err instanceof AuthError)) {
      this.svc.log.error({ err }, "WebSocket check failed");
      conn.close(CLOSE_INTERNAL_ERROR, "internal_error");
      return;
    }
    if (conn.state === "open" && ERROR_STATUS[err.code] === 401) {
      conn.send({ type: "session_revoked" });
    }
    conn.close(closeCodeFor(err.code), err.code);
  }

  private sweep(): void {
    const now = this.svc.clock.now();
    const { authTimeoutSeconds } = this.svc.config.ws;
    for (const conn of this.all) {
      if (conn.state === "waiting" || conn.state === "authenticating") {
        if (now - conn.waitingSince >= authTimeoutSeconds * 1000) {
          conn.close(CLOSE_UNAUTHENTICATED, "auth_timeout");
        }
      } else if (conn.state === "open" && !conn.busy) {
        if (now >= conn.nextBeatAt) void this.run(conn, () => this.heartbeat(conn, now));
        else if (conn.pushAt !== undefined && now >= conn.pushAt) {
          void this.run(conn, () => this.pushToken(conn));
        }
      }
    }
  }

  private async run(conn: Connection, step: () => Promise<void>): Promise<void> {
    conn.busy = true;
    try {
      await step();
    } catch (err) {
      this.fail(conn, err);
    } finally {
      conn.busy = false;
    }
  }

  private async heartbeat(conn: Connection, now: number): Promise<void> {
    const heartbeatMs = this.svc.config.ws.heartbeatSeconds * 1000;
    conn.nextBeatAt = now + heartbeatMs;
    if (conn.ping(2 * heartbeatMs) === "dead") {
      conn.socket.terminate();
      return;
    }
    await this.recheck(conn);
  }

  private async recheck(conn: Connection): Promise<void> {
    await checkSocketSession(this.svc, conn, conn.client.ip);
  }

  /** Outside the sweep's `busy` flag: a bus event must not wait for a heartbeat to finish. */
  private recheckNow(conn: Connection): void {
    this.recheck(conn).catch((err: unknown) => this.fail(conn, err));
  }

  /** The session is re-checked first: a successor is minted only for a live session. */
  private async pushToken(conn: Connection): Promise<void> {
    const { user, session } = await checkSocketSession(this.svc, conn, conn.client.ip);
    const { accessToken, expiresIn } = await accessTokenFor(this.svc, user, session);
    if (expiresIn === 0) throw new AuthError("session_revoked", "The session has ended");
    if (conn.closed) return;
    conn.send({ type: "token", accessToken, expiresIn });
    const now = this.svc.clock.now();
    conn.pushAt = pushTime(now, now + expiresIn * 1000);
  }

  private onCacheEvent(event: CacheEvent): void {
    if (event.type === "session") {
      this.events++;
      for (const conn of this.index.ofSession(event.sessionId)) {
        if (event.change === "revoked") {
          this.fail(conn, new AuthError("session_revoked", "The session has been revoked"));
        } else if (event.change === "locked") {
          this.fail(conn, new AuthError("screen_locked", "The session is locked"));
        } else this.recheckNow(conn);
      }
    } else if (event.type === "user") {
      this.events++;
      for (const conn of this.index.ofUser(event.userId)) this.recheckNow(conn);
    }
  }
}
