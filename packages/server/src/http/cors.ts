import type { FastifyInstance } from "fastify";
import { hostHeaderRefusal } from "./host-header.js";

const ALLOW_METHODS = "GET, POST, PATCH, DELETE";
const ALLOW_HEADERS = "Authorization, Content-Type, X-MFA-Token, X-Step-Up-Token";
/** What a page's script may read: when to retry, and why a token was refused (RFC 6750). */
const EXPOSE_HEADERS = "Retry-After, WWW-Authenticate";
/** Browsers cap this anyway (Chromium: 2 h); 10 min keeps policy changes quick to apply. */
const PREFLIGHT_MAX_AGE_S = "600";

/**
 * CORS with credentials for the allowed origins only (Fetch standard, "CORS protocol").
 * It replaces @fastify/cors: requests without an Origin header, which are most API
 * traffic, cost one header here, where the plugin spent 4-6 % of GET /users/me
 * (bench/RESULTS.md). A disallowed origin simply gets no Access-Control-* headers.
 * The same hook refuses a request that breaks RFC 9112's Host rule (host-header.ts), so
 * every request runs one hook, not two, and the refusal carries every answer's headers.
 */
export function registerCors(
  app: FastifyInstance,
  allowedOrigins: readonly string[],
  baseHeaders: ReadonlyArray<readonly [string, string]> = [],
): void {
  const allowed = new Set(allowedOrigins);

  app.addHook("onRequest", (request, reply, done) => {
    // The answer differs by Origin, so caches must key on it (Fetch §3.2.6).
    reply.header("vary", "Origin");
    // Headers every answer carries (security-headers.ts), in this one hook for its cost.
    for (const [name, value] of baseHeaders) reply.header(name, value);
    const origin = request.headers.origin;
    if (origin !== undefined && allowed.has(origin)) {
      reply.header("access-control-allow-origin", origin);
      reply.header("access-control-allow-credentials", "true");
      reply.header("access-control-expose-headers", EXPOSE_HEADERS);
    }
    done(hostHeaderRefusal(request.raw));
  });

  app.options("*", { schema: { hide: true } }, async (_request, reply) => {
    if (reply.hasHeader("access-control-allow-origin")) {
      reply.header("access-control-allow-methods", ALLOW_METHODS);
      reply.header("access-control-allow-headers", ALLOW_HEADERS);
      reply.header("access-control-max-age", PREFLIGHT_MAX_AGE_S);
    }
    return reply.code(204).header("content-length", "0").send();
  });
}
