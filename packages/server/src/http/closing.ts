import type { IncomingMessage, RequestListener, Server, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import proxyAddr from "@fastify/proxy-addr";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { writeProblem } from "./problem.js";
import { logRequest } from "./request-logger.js";

/** Servers that are closing, with what answers their requests from then on. */
const shedding = new WeakMap<Server, RequestListener>();

export interface ShedOptions {
  log: FastifyBaseLogger;
  /** Fastify's own, so that ids stay unique across the requests it served and these. */
  genReqId: (request: IncomingMessage) => string;
  /** Fastify's `trustProxy` list: the line's `ip` is the one `request.ip` would be. */
  trustProxy: readonly string[];
  /** Headers every answer carries (security-headers.ts). */
  headers: ReadonlyArray<readonly [string, string]>;
}

/**
 * Graceful shutdown's load shedding: once `app` starts closing, a request that still
 * arrives (on a kept-alive connection, or pipelined behind one in flight) is not run but
 * answered 503 `service_unavailable` as problem+json, its connection closed, and it writes
 * its request line like any other. Fastify's own shortcut (`return503OnClosing`) answered a
 * bare JSON body and wrote no line. This takes the server's "request" listener over only
 * from the start of the close, so ordinary requests pay nothing for it. The first preClose
 * hook, so it runs before the WebSocket plugin stops taking upgrades (ws/upgrades.ts) and
 * before any I/O can deliver a request to Fastify's shortcut.
 */
export function shedWhenClosing(app: FastifyInstance, options: ShedOptions): void {
  const trust = options.trustProxy.length > 0 ? proxyAddr.compile([...options.trustProxy]) : null;
  const shed: RequestListener = (request, response) => {
    const start = performance.now();
    const id = options.genReqId(request);
    writeProblem(
      response,
      503,
      "service_unavailable",
      "The server is shutting down; retry the request",
      options.headers,
    );
    const ip = trust ? proxyAddr(request, trust) : (request.socket.remoteAddress ?? "");
    const line = { id, method: request.method ?? "", url: request.url ?? "", ip };
    logRequest(options.log, line, 503, performance.now() - start);
  };
  app.addHook("preClose", (done) => {
    const { server } = app;
    shedding.set(server, shed);
    for (const listener of server.listeners("request")) {
      server.removeListener("request", listener as RequestListener);
    }
    server.on("request", shed);
    done();
  });
}

/** `app`'s server has started closing: new requests are shed. */
export const isClosing = (app: FastifyInstance): boolean => shedding.has(app.server);

/**
 * Serves a request that Node handed over outside its "request" event (one that came with
 * `Connection: Upgrade`): through Fastify's routes, or shed like the others once closing.
 */
export function serveDetached(
  app: FastifyInstance,
  request: IncomingMessage,
  response: ServerResponse,
): void {
  const shed = shedding.get(app.server);
  if (shed) shed(request, response);
  else app.routing(request, response);
}
