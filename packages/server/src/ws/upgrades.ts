import { EventEmitter } from "node:events";
import { type IncomingMessage, type Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";

/** How long a request that came with `Connection: Upgrade` may take (as requestTimeout). */
const DETACHED_TIMEOUT_MS = 30_000;

/**
 * Node hands every request with `Connection: Upgrade` to the server's "upgrade"
 * listeners, detached from its HTTP machinery. @fastify/websocket routes each one
 * through Fastify but closes the socket afterwards only on routes inside its own
 * plugin, so an Upgrade header on any other route (GET /healthz, `Upgrade: h2c`) left
 * the socket open for good, and enough of them ran the process out of file
 * descriptors. Here only upgrades of `path` reach the plugin (the emitter returned, to
 * pass as its `server`); any other request is served as plain HTTP, as RFC 9110 §7.8
 * allows, and its connection closed once the answer is out.
 */
export function routeUpgrades(app: FastifyInstance, path: string): Server {
  const upgrades = new EventEmitter();
  app.server.on("upgrade", (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = request.url ?? "";
    if (url === path || url.startsWith(`${path}?`)) {
      upgrades.emit("upgrade", request, socket, head);
      return;
    }
    socket.on("error", () => socket.destroy());
    socket.setTimeout(DETACHED_TIMEOUT_MS, () => socket.destroy());
    const response = new ServerResponse(request);
    response.shouldKeepAlive = false;
    response.assignSocket(socket);
    response.on("finish", () => socket.destroySoon());
    app.routing(request, response);
  });
  // The plugin only listens for "upgrade" on what it is given as its server.
  return upgrades as unknown as Server;
}
