// The HTTP ceiling on this machine: a bare Fastify route with the same logger setting and
// the same request line as Latchkey (pino; method, path, status, ms, ip), so the ratio
// isolates auth work.
import Fastify, { LogController } from "fastify";

const app = Fastify({
  logger: { level: "info" },
  logController: new LogController({ disableRequestLogging: true }),
});
app.addHook("onResponse", (request, reply, done) => {
  request.log.info(
    {
      method: request.method,
      path: request.url.split("?")[0],
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
    },
    "request",
  );
  done();
});
app.get("/hello", async () => ({ hello: "world" }));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 8099) });
