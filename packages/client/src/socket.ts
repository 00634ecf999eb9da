import type { LatchkeyError } from "./errors.js";
import { refreshFailure } from "./refresh-failure.js";

/** The subprotocol of API.md's "WebSocket: GET /ws"; the server selects it and never echoes the token. */
export const SUBPROTOCOL = "latchkey.v1";
/**
 * Close codes: 4000 + the HTTP status of the refusal, the reason being the contract's
 * error code. 4401 before `authenticated` with one of these reasons means the handshake's
 * access token was stale: refresh and try again. Any other 4401 ends the session.
 */
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_LOCKED = 4423;
const CLOSE_PROTOCOL_ERROR = 4400;
/**
 * `auth_timeout`: the handshake carried no credential the server could use, which in cookie
 * mode means the lk_access cookie aged out with its token (Max-Age = its lifetime).
 */
const STALE_TOKEN_REASONS = new Set([
  "token_expired",
  "invalid_token",
  "unauthenticated",
  "auth_timeout",
]);
const NORMAL_CLOSURE = 1000;
const OPEN = 1;

/** The part of the WHATWG WebSocket the helper uses; `ws` in Node satisfies it too. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

export type SocketState = "connecting" | "open" | "waiting" | "locked" | "revoked" | "closed";

export interface SocketOptions {
  /** Default: the client's base URL with ws:// or wss:// and path /ws. */
  url?: string;
  /** Default: the global WebSocket (browsers, Node 22+); pass `ws`'s class on Node 20. */
  WebSocket?: WebSocketConstructor;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  onAuthenticated?(info: { userId: string; sessionId: string }): void;
  /** Every server message that is not part of the auth protocol, parsed from JSON. */
  onMessage?(message: unknown): void;
  /** The session ended (`session_revoked`, close 4401, or refresh refused): no reconnect. */
  onRevoked?(): void;
  /**
   * A refresh was refused in a way no retry cures (403 `ip_not_allowed`, `account_disabled`,
   * `csrf_rejected`, other 4xx but 401, 408, 423 and 429): the socket stops (`closed`). The
   * session is not over, so `onRevoked` is not called and the tokens are kept.
   */
  onRefused?(error: LatchkeyError): void;
  /** Close 4423: unlock the session (POST /auth/unlock), then call `reconnect()`. */
  onLocked?(): void;
  /** Every close the server or network caused, before the helper decides what to do. */
  onClose?(event: { code: number; reason: string }): void;
  onStateChange?(state: SocketState): void;
}

/** What the socket needs from the client; narrow so the socket never sees storage or modes. */
export interface SocketAuth {
  /**
   * How to sign in: a live bearer token (refreshing first when the known one is stale),
   * `{}` to rely on the lk_access cookie the browser sends, or undefined: no session.
   */
  credential(): Promise<{ bearer?: string } | undefined>;
  /** Single-flight refresh; false when the session is over. */
  refresh(): Promise<boolean>;
  accept(push: { accessToken: string; refreshToken?: string; expiresIn?: number }): Promise<void>;
  ended(reason: string): void;
}

interface ServerMessage {
  type?: unknown;
  userId?: unknown;
  sessionId?: unknown;
  accessToken?: unknown;
  refreshToken?: unknown;
  expiresIn?: unknown;
}

/**
 * A WebSocket that signs in during the handshake: with the access token as a subprotocol
 * (`latchkey.v1, bearer.<jwt>`) in body mode, with the lk_access cookie in cookie mode. It
 * keeps pushed tokens and reconnects with jittered exponential backoff. Revocation,
 * screen lock, 4403 and a refresh refused for good stop it: reconnecting could not succeed.
 */
export class LatchkeySocket {
  #state: SocketState = "connecting";
  #ws: WebSocketLike | undefined;
  #attempt = 0;
  /** Counts connection attempts: one overtaken while it awaited its credential gives up. */
  #generation = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #Ctor: WebSocketConstructor;

  constructor(
    private readonly url: string,
    private readonly auth: SocketAuth,
    private readonly options: SocketOptions = {},
  ) {
    const Ctor =
      options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
      undefined;
    if (!Ctor) throw new TypeError("latchkey: no WebSocket here; pass options.WebSocket (ws)");
    this.#Ctor = Ctor;
    void this.#connect(false);
  }

  get state(): SocketState {
    return this.#state;
  }

  /** Sends one JSON message; false when the socket is not open and authenticated. */
  send(message: unknown): boolean {
    if (this.#state !== "open" || this.#ws?.readyState !== OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  close(): void {
    this.#stop("closed");
  }

  /** Starts again, e.g. after POST /auth/unlock lifted a screen lock. */
  reconnect(): void {
    if (this.#state === "closed" || this.#state === "revoked") return;
    clearTimeout(this.#timer);
    this.#attempt = 0;
    this.#ws?.close(NORMAL_CLOSURE);
    this.#ws = undefined;
    void this.#connect(false);
  }

  async #connect(refreshFirst: boolean): Promise<void> {
    const generation = ++this.#generation;
    this.#set("connecting");
    // Closed, or `reconnect()` started another attempt meanwhile: that one owns the socket.
    const overtaken = () => this.#ended() || generation !== this.#generation;
    let credential: { bearer?: string } | undefined;
    try {
      if (refreshFirst && !(await this.auth.refresh())) {
        return overtaken() ? undefined : this.#revoked("refresh_refused");
      }
      credential = await this.auth.credential();
    } catch (err) {
      if (overtaken()) return;
      switch (refreshFailure(err)) {
        case "ended":
          return this.#revoked((err as LatchkeyError).code);
        // A locked session's refresh answers 423: no attempt gets in before an unlock.
        case "locked":
          return this.#locked();
        // 403 and the like: each attempt would be refused the same way, at every delay.
        case "refused":
          return this.#refused(err as LatchkeyError);
        case "transient":
          return this.#retry(refreshFirst); // unreachable, 429, 5xx: try again later
      }
    }
    if (overtaken()) return;
    if (!credential) return this.#revoked("no_session");
    const protocols = [SUBPROTOCOL, ...(credential.bearer ? [`bearer.${credential.bearer}`] : [])];
    const ws = new this.#Ctor(this.url, protocols);
    this.#ws = ws;
    let authenticated = false;
    ws.onmessage = (event) => {
      const message = parse(event.data);
      if (!message) return;
      if (message.type === "authenticated") {
        authenticated = true;
        this.#attempt = 0;
        this.#set("open");
        void this.#accept(message);
        this.options.onAuthenticated?.({
          userId: String(message.userId),
          sessionId: String(message.sessionId),
        });
      } else if (message.type === "token") {
        void this.#accept(message);
      } else if (message.type === "session_revoked") {
        this.#revoked("session_revoked");
      } else if (message.type !== "pong") {
        this.options.onMessage?.(message);
      }
    };
    ws.onclose = (event) => {
      if (this.#ws !== ws || this.#ended()) return;
      this.#ws = undefined;
      this.options.onClose?.({ code: event.code, reason: event.reason });
      if (event.code === CLOSE_UNAUTHENTICATED) {
        // A token refreshed just now and still refused: not a staleness problem.
        if (authenticated || !STALE_TOKEN_REASONS.has(event.reason) || refreshFirst) {
          return this.#revoked(event.reason || "session_revoked");
        }
        return this.#retry(true);
      }
      if (event.code === CLOSE_LOCKED) return this.#locked();
      if (event.code === CLOSE_FORBIDDEN || event.code === CLOSE_PROTOCOL_ERROR) {
        return this.#stop("closed");
      }
      this.#retry(false);
    };
    ws.onerror = () => {}; // a close event always follows
  }

  /** A push that cannot be stored keeps the old token; the next 401 refreshes anyway. */
  async #accept(message: ServerMessage): Promise<void> {
    if (typeof message.accessToken !== "string") return;
    await this.auth
      .accept({
        accessToken: message.accessToken,
        ...(typeof message.refreshToken === "string" ? { refreshToken: message.refreshToken } : {}),
        ...(typeof message.expiresIn === "number" ? { expiresIn: message.expiresIn } : {}),
      })
      .catch(() => {});
  }

  #retry(refreshFirst: boolean): void {
    const min = this.options.minReconnectDelayMs ?? 500;
    const max = this.options.maxReconnectDelayMs ?? 30_000;
    // "Full jitter": spreads a whole fleet's reconnects after a server restart.
    const delay = Math.random() * Math.min(max, min * 2 ** this.#attempt);
    this.#attempt++;
    this.#set("waiting");
    this.#timer = setTimeout(() => void this.#connect(refreshFirst), Math.max(min / 2, delay));
  }

  #locked(): void {
    this.#set("locked");
    this.options.onLocked?.();
  }

  #refused(err: LatchkeyError): void {
    this.#stop("closed");
    this.options.onRefused?.(err);
  }

  #revoked(reason: string): void {
    this.#stop("revoked");
    this.auth.ended(reason);
    this.options.onRevoked?.();
  }

  #stop(state: SocketState): void {
    if (this.#ended()) return;
    clearTimeout(this.#timer);
    this.#set(state);
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close(NORMAL_CLOSURE);
  }

  #ended(): boolean {
    return this.#state === "closed" || this.#state === "revoked";
  }

  #set(state: SocketState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.options.onStateChange?.(state);
  }
}

function parse(data: unknown): ServerMessage | undefined {
  try {
    const value: unknown = JSON.parse(String(data));
    return value && typeof value === "object" ? (value as ServerMessage) : undefined;
  } catch {
    return undefined;
  }
}
