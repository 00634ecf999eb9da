import { performance } from "node:perf_hooks";
import type { WebSocket } from "ws";
import type { ClientInfo } from "../services.js";
import type { ServerMessage } from "./protocol.js";

/** One socket's state; the hub decides, the connection only records and sends. */
export class Connection {
  state: "waiting" | "authenticating" | "open" | "closed" = "waiting";
  userId = "";
  sessionId = "";
  /** Authenticated by the lk_access cookie: an auth message may still replace that (see hub). */
  byCookie = false;
  /** Clock time of the next heartbeat, and of the next token push (none for cookie sockets). */
  nextBeatAt = 0;
  pushAt: number | undefined;
  /** The key it counts under among its IP's sockets not yet authenticated (PendingByIp). */
  pendingKey: string | undefined;
  /** Run when the server closes it (before the close handshake ends): the hub's bookkeeping. */
  onServerClose: (() => void) | undefined;
  /** A heartbeat or push is running: the sweep does not start another. */
  busy = false;
  /**
   * Real time (not the injectable clock) of the oldest unanswered ping: transport
   * liveness is no security decision, and a test moving the clock must not kill sockets.
   */
  pingUnansweredSince: number | undefined;
  /** Real time the current message window began, and the client messages within it. */
  private windowStart = Number.NEGATIVE_INFINITY;
  private windowMessages = 0;

  constructor(
    readonly socket: WebSocket,
    readonly client: ClientInfo,
    /** Clock time the current wait for authentication began (the open, or a re-authentication). */
    public waitingSince: number,
  ) {}

  get closed(): boolean {
    return this.state === "closed";
  }

  send(message: ServerMessage): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(JSON.stringify(message));
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.onServerClose?.();
    this.socket.close(code, reason);
  }

  /** Counts a client message: false once more than `max` arrived within `windowMs` of real time. */
  countMessage(max: number, windowMs: number): boolean {
    const now = performance.now();
    if (now - this.windowStart >= windowMs) {
      this.windowStart = now;
      this.windowMessages = 0;
    }
    return ++this.windowMessages <= max;
  }

  /** Pings, or reports a peer that left two pings unanswered for `deadMs` of real time. */
  ping(deadMs: number): "sent" | "dead" {
    const now = performance.now();
    if (this.pingUnansweredSince !== undefined && now - this.pingUnansweredSince > deadMs) {
      return "dead";
    }
    this.pingUnansweredSince ??= now;
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping();
    return "sent";
  }
}
