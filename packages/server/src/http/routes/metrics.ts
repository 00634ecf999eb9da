import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { AuthError } from "../../domain/errors.js";
import type { Services } from "../../services.js";
import { problemResponses } from "../schemas.js";

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;
const digest = (value: string) => createHash("sha256").update(value).digest();

/**
 * Who may scrape: with LATCHKEY_METRICS_TOKEN, whoever presents it (compared in
 * constant time); without one, only a caller on this machine that came through no
 * proxy, so a deployment never publishes its metrics by accident.
 */
function assertMayScrape(svc: Services, request: FastifyRequest): void {
  const token = svc.config.operations.metricsToken;
  if (token) {
    const presented = /^Bearer (.+)$/i.exec(request.headers.authorization ?? "")?.[1] ?? "";
    if (!timingSafeEqual(digest(presented), digest(token))) {
      throw new AuthError("unauthenticated", "GET /metrics needs the metrics bearer token");
    }
    return;
  }
  const proxied = request.headers["x-forwarded-for"] !== undefined || request.headers.forwarded;
  if (proxied || !LOOPBACK.test(request.socket.remoteAddress ?? "")) {
    throw new AuthError(
      "forbidden",
      "GET /metrics answers loopback callers only; set LATCHKEY_METRICS_TOKEN to scrape from elsewhere",
    );
  }
}

export const metricsRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  app.get(
    "/metrics",
    {
      logLevel: "warn",
      schema: {
        tags: ["operations"],
        summary: "Prometheus metrics (text format 0.0.4)",
        description:
          "Open to loopback callers that came through no proxy; with LATCHKEY_METRICS_TOKEN set, " +
          "to `Authorization: Bearer <token>` only. Request latency is labelled by route pattern.",
        security: [{}, { metricsToken: [] }],
        response: {
          200: Type.String({ description: "text/plain; version=0.0.4" }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request, reply) => {
      assertMayScrape(svc, request);
      const body = await svc.metrics.render();
      return reply
        .header("cache-control", "no-store")
        .type(svc.metrics.registry.contentType)
        .send(body);
    },
  );
};
