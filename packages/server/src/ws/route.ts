import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import websocket from "@fastify/websocket";
import { Type } from "@sinclair/typebox";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/load.js";
import { AuthError, validationFailed } from "../domain/errors.js";
import { isClosing } from "../http/closing.js";
import { ACCESS_COOKIE } from "../http/cookies.js";
import { clientInfo } from "../http/credentials.js";
import { logRequest } from "../http/request-logger.js";
import { problemResponses } from "../http/schemas.js";
import type { Services } from "../services.js";
import { SocketHub } from "./hub.js";
import { protocolBearer, type SocketCredential, SUBPROTOCOL } from "./protocol.js";
import { handshakeRefusalOf, refuseHandshake, routeUpgrades } from "./upgrades.js";

const WS_PATH = "/ws";
/** The status a handshake is logged with when its client left before the answer. */
const CLIENT_CLOSED = 499;

const DESCRIPTION = `WebSocket (RFC 6455); see README.md "WebSocket". Ways in: the subprotocol list
\`latchkey.v1, bearer.<access JWT>\` (the server selects \`latchkey.v1\`, never the token), the
lk_access cookie (only from an allowed Origin), or an unauthenticated open followed by
\`{"type":"auth","accessToken"}\` or \`{"type":"auth","refreshToken"}\` (rotated as by
/auth/refresh) within 10 s. Server messages: \`authenticated\`, \`token\` (a new access token
before the old one expires), \`session_revoked\` then close 4401; close 4423 when the session
is screen-locked, 4403 when the IP is not allowed or a disabled account authenticates (disabling
revokes the sessions: 4401), 4429 when rate-limited (failed authentications from the IP, or more
than 60 messages in 10 s from the socket), over a socket cap or when the IP holds too many
sockets not yet authenticated, 4400 for a malformed message. A failed authentication closes 4401 (or
as above) with the error code as the close reason. A cookie handshake from a foreign Origin is
refused with HTTP 403 \`csrf_rejected\` before the upgrade. A malformed handshake is refused
with \`validation_failed\` naming the header: 400 for Sec-WebSocket-Key or
Sec-WebSocket-Protocol, 426 with \`Sec-WebSocket-Version: 13, 8\` for a version other than those;
a request that is no WebSocket handshake (no \`Upgrade: websocket\`) is answered 400 as plain HTTP.`;

/** GET /ws: authenticated sockets that learn of revocations at once (API.md "WebSocket"). */
export const wsRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const hub = new SocketHub(svc);
  const credentials = new WeakMap<FastifyRequest, SocketCredential | undefined>();
  const upgrading = new WeakMap<FastifyRequest, () => void>();
  // Before @fastify/websocket's own preClose (which closes with no code): 1001 tells clients why.
  app.addHook("preClose", async () => hub.stop());
  await app.register(websocket, {
    options: {
      server: routeUpgrades(app, WS_PATH),
      maxPayload: svc.config.ws.maxMessageBytes,
      // Select latchkey.v1 only: echoing `bearer.<jwt>` would put the token in a response header.
      handleProtocols: (protocols: Set<string>) =>
        protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false,
    },
    errorHandler: (err, socket) => {
      svc.log.debug({ err }, "WebSocket error");
      socket.terminate();
    },
  });
  app.route({
    method: "GET",
    url: WS_PATH,
    schema: {
      tags: ["realtime"],
      summary: "WebSocket: session events and access-token push",
      description: DESCRIPTION,
      response: {
        101: Type.Null({ description: "Switching Protocols: the socket is open" }),
        ...problemResponses(400, 403, 426),
      },
    },
    // Before any credential is looked at, as `ws` would refuse it.
    onRequest: async (request, reply) => {
      const refusal = handshakeRefusalOf(request.raw);
      if (refusal) return refuseHandshake(reply, refusal);
    },
    preValidation: async (request) => {
      credentials.set(request, handshakeCredential(request, svc.config));
    },
    preHandler: async (request, reply) => {
      if (request.ws) upgrading.set(request, logUpgrade(app, svc, request, reply));
    },
    handler: async () => {
      throw validationFailed("headers.upgrade", "GET /ws takes a WebSocket upgrade (RFC 6455)");
    },
    wsHandler: (socket, request) => {
      upgrading.get(request)?.();
      hub.open(socket, clientInfo(request), credentials.get(request));
    },
  });
};

/**
 * The request line and the request-duration sample of a handshake that is being upgraded:
 * @fastify/websocket hijacks its reply, so Fastify's onResponse hooks, which write every
 * other request's (a refused handshake's included), never run. The returned function
 * writes both with 101 once the upgrade is answered; should the connection close first
 * (the client left, which `ws` answers by dropping it, or the server is closing, which
 * `ws` answers 503), they are written then, with 499 (nginx's "client closed request")
 * or 503.
 */
function logUpgrade(
  app: FastifyInstance,
  svc: Services,
  request: FastifyRequest,
  reply: FastifyReply,
): () => void {
  const { socket } = request.raw;
  const { ip } = request; // read now: a closed socket no longer knows its peer
  // The series of the route's refusals (http/app.ts binds the same recorder to them).
  const record = svc.metrics.requestRecorder(WS_PATH);
  const answered = (status: number) => {
    logRequest(svc.log, request, status, reply.elapsedTime, ip);
    record(request.method, status, reply.elapsedTime / 1000);
  };
  const unanswered = () => answered(isClosing(app) ? 503 : CLIENT_CLOSED);
  socket.once("close", unanswered);
  return () => {
    socket.off("close", unanswered);
    answered(101);
  };
}

/**
 * The handshake's credential: the subprotocol bearer first, then the lk_access cookie.
 * A cookie rides along on any page's handshake and WebSockets have no CORS, so it
 * counts only from an allowed Origin (cross-site WebSocket hijacking, OWASP).
 */
function handshakeCredential(
  request: FastifyRequest,
  config: Config,
): SocketCredential | undefined {
  const bearer = protocolBearer(request.headers["sec-websocket-protocol"]);
  if (bearer) return { kind: "access", token: bearer, via: "protocol" };
  const cookie = request.cookies[ACCESS_COOKIE];
  if (!cookie) return undefined;
  const { origin } = request.headers;
  if (!origin || !config.allowedOrigins.includes(origin)) {
    throw new AuthError(
      "csrf_rejected",
      "A cookie-authenticated WebSocket needs an allowed Origin",
    );
  }
  return { kind: "access", token: cookie, via: "cookie" };
}
