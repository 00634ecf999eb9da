import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { Services } from "../../services.js";

const Readiness = Type.Object({
  status: Type.Union([Type.Literal("ok"), Type.Literal("unavailable")]),
  checks: Type.Record(Type.String(), Type.String()),
  mail: Type.Object(
    {
      transport: Type.String(),
      status: Type.Union([Type.Literal("ok"), Type.Literal("failing")], {
        description: "`failing` while the last message given up on has had no success since",
      }),
    },
    {
      description:
        "Detail only: mail trouble does not make a node unready, since sign-in and refresh do " +
        "not need it. Counts are not shown here: they move with mail to real accounts.",
    },
  ),
});

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export const healthRoutes: FastifyPluginAsyncTypebox<{
  svc: Services;
  checks: ReadinessCheck[];
}> = async (app, { svc, checks }) => {
  const tags = ["operations"];
  app.get(
    "/healthz",
    {
      logLevel: "warn",
      schema: {
        tags,
        summary: "Liveness",
        response: { 200: Type.Object({ status: Type.Literal("ok") }) },
      },
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      logLevel: "warn",
      schema: {
        tags,
        summary: "Readiness: the database (and Redis when configured) answer",
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const results = await Promise.all(
        checks.map(async (c) => {
          try {
            await c.check();
            return [c.name, "ok"] as const;
          } catch {
            return [c.name, "unavailable"] as const;
          }
        }),
      );
      const ready = results.every(([, r]) => r === "ok");
      return reply.code(ready ? 200 : 503).send({
        status: ready ? "ok" : "unavailable",
        checks: Object.fromEntries(results),
        mail: svc.mailer.health(),
      });
    },
  );
};
