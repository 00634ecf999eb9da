import swagger, { type StaticDocumentSpec } from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { errorHandler, notFoundHandler } from "./problem.js";
import { securityHeaders } from "./security-headers.js";

const PREFIX = "/docs";

/**
 * The page lives on the origin whose cookies sign users in, and its "Try it out" sends
 * cookie-authenticated requests with an allowed Origin: no other site may frame it
 * (clickjacking), it runs only Swagger UI's own scripts, and it fetches nothing but this
 * server (the "Explore" box cannot load a document from elsewhere). Swagger UI writes a
 * few inline styles, hence 'unsafe-inline' for styles only: a style cannot run code.
 */
function docsCsp(publicUrl: string): string {
  const api = new URL(publicUrl).origin;
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    `connect-src 'self' ${api}`,
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/**
 * The browsable API page (Swagger UI) at /docs, loaded by its first request. Swagger UI
 * serves files from its own directory, so it stays outside the bundle, and with its
 * static file server and YAML library it is ~130 files: loading and registering them at
 * every start cost ~120 ms of the ~690 to ready here (bench/RESULTS.md). Its routes
 * live in a Fastify instance of their own, over a copy of the finished OpenAPI document,
 * to which these two routes hand the request.
 */
export function registerDocsPage(app: FastifyInstance, publicUrl: string): void {
  const csp = docsCsp(publicUrl);
  // The answers every other route carries (its replies bypass the app's hooks: hijacked).
  const base = securityHeaders({ publicUrl });
  let page: Promise<FastifyInstance> | undefined;
  const load = async () => {
    const { default: swaggerUi } = await import("@fastify/swagger-ui");
    const docs = Fastify({ logger: false });
    docs.setErrorHandler(errorHandler);
    docs.setNotFoundHandler(notFoundHandler);
    docs.addHook("onSend", async (_request, reply) => {
      reply.header("content-security-policy", csp);
      reply.header("x-frame-options", "DENY");
      for (const [name, value] of base) reply.header(name, value);
      reply.header("referrer-policy", "same-origin");
    });
    // OpenAPI 3.1, which the static mode's types predate; it serves the object as it is.
    const document = app.swagger() as StaticDocumentSpec["document"];
    await docs.register(swagger, { mode: "static", specification: { document } });
    await docs.register(swaggerUi, { routePrefix: PREFIX });
    await docs.ready();
    return docs;
  };
  const serve = async (request: FastifyRequest, reply: FastifyReply) => {
    page ??= load().catch((err: unknown) => {
      page = undefined;
      throw err;
    });
    const docs = await page;
    reply.hijack();
    docs.routing(request.raw, reply.raw);
  };
  for (const url of [PREFIX, `${PREFIX}/*`]) app.get(url, { schema: { hide: true } }, serve);
}
