// The HTTP ceiling on this machine: a bare Fastify route with the same logger
// setting as Latchkey (pino, one line per request), so the ratio isolates auth work.
import Fastify, { LogController } from "fastify";

const app = Fastify({
  logger: { level: "info" },
  logController: new LogController({ disableRequestLogging: true }),
});
app.addHook("onResponse", async (request, reply) => {
  request.log.info(
    { method: request.method, path: request.url, status: reply.statusCode },
    "request",
  );
});
app.get("/hello", async () => ({ hello: "world" }));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8099) });
