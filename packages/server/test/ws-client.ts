import WebSocket from "ws";

export interface Closed {
  code: number;
  reason: string;
}

/** A real `ws` client over loopback, with its messages queued for `next()`. */
export interface WsClient {
  ws: WebSocket;
  /** The handshake answer's Sec-WebSocket-Protocol header. */
  protocolHeader: string | undefined;
  next(): Promise<Record<string, unknown>>;
  send(message: unknown): void;
  /** Resolves when the server closes the socket (fails after a few seconds). */
  closed(): Promise<Closed>;
}

const WAIT_MS = 5_000;

/** Opens `<base>/ws`; rejects with `HTTP <status>` when the upgrade is refused. */
export async function openSocket(
  base: string,
  options: { protocols?: string[]; headers?: Record<string, string> } = {},
): Promise<WsClient> {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/ws`, options.protocols ?? [], {
    headers: options.headers,
  });
  const queue: Array<Record<string, unknown>> = [];
  const waiting: Array<(m: Record<string, unknown>) => void> = [];
  ws.on("message", (data) => {
    const message = JSON.parse(String(data)) as Record<string, unknown>;
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  const closed = new Promise<Closed>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  let protocolHeader: string | undefined;
  ws.on("upgrade", (res) => {
    protocolHeader = res.headers["sec-websocket-protocol"];
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return {
    ws,
    protocolHeader,
    next: () =>
      within(
        new Promise((resolve) => {
          const queued = queue.shift();
          if (queued) resolve(queued);
          else waiting.push(resolve);
        }),
        "a message",
      ),
    send: (message) => ws.send(typeof message === "string" ? message : JSON.stringify(message)),
    closed: () => within(closed, "the close"),
  };
}

/** Fails after a few seconds instead of hanging until the test timeout. */
export function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Real time for a few sweeps (sweepIntervalMs is 20 in these tests) to pass. */
export const sweeps = (n = 5) => new Promise((r) => setTimeout(r, n * 20));
