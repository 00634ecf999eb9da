import swagger, { type StaticDocumentSpec } from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { errorHandler, notFoundHandler } from "./problem.js";

const PREFIX = "/docs";

/**
 * The browsable API page (Swagger UI) at /docs, loaded by its first request. Swagger UI
 * serves files from its own directory, so it stays outside the bundle, and with its
 * static file server and YAML library it is ~130 files: loading and registering them at
 * every start cost ~120 ms of the ~690 to ready here (bench/RESULTS.md). Its routes
 * live in a Fastify instance of their own, over a copy of the finished OpenAPI document,
 * to which these two routes hand the request.
 */
export function registerDocsPage(app: FastifyInstance): void {
  let page: Promise<FastifyInstance> | undefined;
  const load = async () => {
    const { default: swaggerUi } = await import("@fastify/swagger-ui");
    const docs = Fastify({ logger: false });
    docs.setErrorHandler(errorHandler);
    docs.setNotFoundHandler(notFoundHandler);
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
