import { EventEmitter } from "node:events";
import {
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  ServerResponse,
} from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance, FastifyReply } from "fastify";
import { subprotocol } from "ws";
import { isClosing, serveDetached } from "../http/closing.js";
import { hostHeaderRefusal } from "../http/host-header.js";
import { sendProblem } from "../http/problem.js";

declare module "ws" {
  /** `ws`'s own Sec-WebSocket-Protocol parser, exported by it but not typed by @types/ws. */
  export const subprotocol: { parse(header: string): Set<string> };
}

/** How long a request that came with `Connection: Upgrade` may take (as requestTimeout). */
const DETACHED_TIMEOUT_MS = 30_000;

/** `ws`'s rule for a Sec-WebSocket-Key: a 16-byte nonce in base64 (RFC 6455 §4.1). */
const KEY = /^[+/0-9A-Za-z]{22}==$/;

/**
 * Node hands every request with `Connection: Upgrade` to the server's "upgrade"
 * listeners, detached from its HTTP machinery. @fastify/websocket routes each one
 * through Fastify but closes the socket afterwards only on routes inside its own
 * plugin, so an Upgrade header on any other route (GET /healthz, `Upgrade: h2c`) left
 * the socket open for good, and enough of them ran the process out of file
 * descriptors. Here only well-formed WebSocket handshakes on `path` reach the plugin (the
 * emitter returned, to pass as its `server`); any other request, a POST or an `Upgrade:
 * h2c` to `path` included, is served as plain HTTP, as RFC 9110 §7.8 allows, and so is a
 * malformed handshake, which the route answers with its refusal: either way through
 * Fastify (or, once the server is closing, its shedding: http/closing.ts), so the request
 * line is logged, and the connection closed once the answer is out.
 */
export function routeUpgrades(app: FastifyInstance, path: string): Server {
  const upgrades = new EventEmitter();
  app.server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) =>
    whenIdle(socket, () => route(request, socket, head)),
  );
  const route = (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const handshake = isWebSocketHandshake(request, path);
    const refusal = handshake ? handshakeRefusal(request.headers) : undefined;
    // Once the server is closing, a handshake is shed (503) like any request: the plugin
    // stops listening for upgrades in its preClose, which runs after the shedding starts,
    // and a handshake emitted to nobody would hang unanswered.
    if (handshake && !refusal && !isClosing(app)) {
      upgrades.emit("upgrade", request, socket, head);
      return;
    }
    // Node takes its own error listener off a socket it hands over.
    socket.on("error", () => socket.destroy());
    // A refusal is answered by the route (refuseHandshake), so that it is logged and
    // measured as any request is.
    if (refusal) refusals.set(request, refusal);
    serveAsHttp(app, request, socket);
  };
  // The plugin only listens for "upgrade" on what it is given as its server.
  return upgrades as unknown as Server;
}

const refusals = new WeakMap<IncomingMessage, Refusal>();

/** Why routeUpgrades refused this WebSocket handshake, if it did. */
export const handshakeRefusalOf = (request: IncomingMessage): Refusal | undefined =>
  refusals.get(request);

/** The answer to a refused handshake: a 4xx problem; serveAsHttp closes the connection. */
export function refuseHandshake(reply: FastifyReply, refusal: Refusal): FastifyReply {
  if (refusal.headers) reply.headers(refusal.headers);
  return sendProblem(reply, refusal.status, "validation_failed", refusal.detail, [
    { path: `headers.${refusal.header}`, message: refusal.message },
  ]);
}

/**
 * Runs `next` once no response holds `socket`. Node hands an upgrade over as soon as it is
 * parsed, also when it was pipelined behind a request still being answered, whose response
 * keeps the socket until it is out (and any queued behind it after); assigning the socket
 * to another response meanwhile threw out of Node's parser and ended the process. Node's
 * private `_httpMessage` is that response, as `httpAllowHalfOpen` in http/app.ts is read.
 */
function whenIdle(socket: Socket, next: () => void): void {
  const busy = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!busy) {
    next();
    return;
  }
  // Node took its own error listener off the socket; the response may still write to it.
  const onError = () => socket.destroy();
  socket.on("error", onError);
  // "close" follows "finish" (a tick later, once Node has let the socket go) and an abort.
  busy.once("close", () => {
    socket.off("error", onError);
    // A response that ended the connection (Connection: close) leaves nothing to answer.
    if (socket.destroyed || !socket.writable) socket.destroy();
    else whenIdle(socket, next);
  });
}

/**
 * A GET of `path` asking for `Upgrade: websocket` (in any case, as `ws` takes it). `ws`
 * refuses other methods and upgrades itself; here they are plain HTTP, answered as they
 * would be without the header.
 */
function isWebSocketHandshake(request: IncomingMessage, path: string): boolean {
  const url = request.url ?? "";
  return (
    (url === path || url.startsWith(`${path}?`)) &&
    request.method === "GET" &&
    request.headers.upgrade?.toLowerCase() === "websocket" &&
    // One that breaks the Host rule is served as plain HTTP, which refuses it
    // (http/host-header.ts) and closes the connection after.
    hostHeaderRefusal(request) === undefined
  );
}

function serveAsHttp(app: FastifyInstance, request: IncomingMessage, socket: Socket): void {
  socket.setTimeout(DETACHED_TIMEOUT_MS, () => socket.destroy());
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket);
  response.on("finish", () => socket.destroySoon());
  serveDetached(app, request, response);
}

export interface Refusal {
  status: number;
  header: string;
  message: string;
  detail: string;
  headers?: Record<string, string>;
}

/**
 * Why `ws`'s handleUpgrade would refuse this handshake, by its rules and in its order, so
 * the refusal is a problem+json of ours rather than its text/html. Sec-WebSocket-Extensions
 * is left out: `ws` reads it only with permessage-deflate, which Latchkey does not offer.
 */
function handshakeRefusal(headers: IncomingHttpHeaders): Refusal | undefined {
  const key = headers["sec-websocket-key"];
  if (key === undefined || !KEY.test(key)) {
    return {
      status: 400,
      header: "sec-websocket-key",
      message: "must be a 16-byte nonce in base64 (RFC 6455 §4.1)",
      detail: "Missing or invalid Sec-WebSocket-Key header",
    };
  }
  // `ws` speaks 13 (RFC 6455) and 8 (its last draft). RFC 6455 §4.4: a version the server
  // does not speak is answered 426, naming the ones it does; RFC 9110 §15.5.22 adds Upgrade
  // (which Connection must list, §7.8).
  const version = Number(headers["sec-websocket-version"]);
  if (version !== 13 && version !== 8) {
    return {
      status: 426,
      header: "sec-websocket-version",
      message: "must be 13 or 8",
      detail: "Missing or unsupported Sec-WebSocket-Version header",
      headers: {
        "Sec-WebSocket-Version": "13, 8",
        Upgrade: "websocket",
        // RFC 9110 §7.8: Connection lists Upgrade; "close" as on every refusal.
        Connection: "Upgrade, close",
      },
    };
  }
  const protocols = headers["sec-websocket-protocol"];
  if (protocols !== undefined) {
    try {
      subprotocol.parse(protocols);
    } catch {
      // Not `ws`'s own message: it quotes a duplicated entry, which may be `bearer.<jwt>`.
      return {
        status: 400,
        header: "sec-websocket-protocol",
        message: "must be a comma-separated list of distinct tokens (RFC 6455 §4.1)",
        detail: "Invalid Sec-WebSocket-Protocol header",
      };
    }
  }
  return undefined;
}
