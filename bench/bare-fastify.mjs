// A bare Fastify app with the same logger setting and the same request line as Latchkey
// (pino; method, path, status, ms, ip): the ceilings the ratios are taken against
// (hello.mjs, login-floor.mjs) differ from Latchkey only in the work a route does.
import Fastify, { LogController } from "fastify";

export function bareFastify() {
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
  return app;
}
