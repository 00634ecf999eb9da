import type { IncomingMessage, ServerResponse } from "node:http";
import type { Latchkey } from "../app.js";
import { once } from "./instance.js";

/** What the Functions Framework hands a function: Express's request, body already read. */
export interface FunctionRequest extends IncomingMessage {
  /** The body exactly as sent; set by the framework's body parsers. */
  rawBody?: Buffer;
  originalUrl?: string;
}

/** Hop-by-hop headers describe the injected exchange, not the one the framework sends. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding"]);

/**
 * A Google Cloud Functions (Functions Framework) HTTP function serving the app `build`
 * returns, built on the first request. The framework has already parsed the body, so
 * the raw bytes go through Fastify's own parsers and limits again: same validation,
 * same errors as the server. The client IP is the socket peer with `trustProxy`
 * applied to X-Forwarded-For, as on a server behind a load balancer.
 */
export function createFunctionHandler(
  build: () => Promise<Latchkey>,
): (req: FunctionRequest, res: ServerResponse) => Promise<void> {
  const instance = once(build);
  return async (req, res) => {
    const app = await instance();
    const answer = await app.http.inject({
      method: req.method as "GET",
      url: req.originalUrl ?? req.url ?? "/",
      headers: req.headers,
      ...(req.rawBody && req.rawBody.length > 0 ? { payload: req.rawBody } : {}),
      remoteAddress: req.socket.remoteAddress ?? "",
    });
    // Cloud Run may throttle the CPU once the response is sent: write the audit events first.
    await app.svc.auditLog.flush();
    for (const [name, value] of Object.entries(answer.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) res.setHeader(name, value);
    }
    res.statusCode = answer.statusCode;
    res.end(answer.rawPayload);
  };
}
