import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { validationFailed } from "../../domain/errors.js";
import type { Services } from "../../services.js";
import { requireAdmin, requireAuth } from "../guards.js";
import { nextCursor, PagingQuery, pageOf } from "../paging.js";
import { authSecurity, Nullable, problemResponses, Text } from "../schemas.js";

const AuditEventView = Type.Object({
  id: Type.String(),
  type: Type.String({
    description:
      "e.g. login_succeeded, login_failed, login_rate_limited (lockout), mfa_enabled, " +
      "mfa_disabled, backup_code_used, refresh_token_reused, logout, session_revoked, " +
      "password_changed, api_token_created, admin_user_updated; README.md lists them all",
  }),
  userId: Nullable(Type.String()),
  sessionId: Nullable(Type.String()),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  detail: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Type.String({ format: "date-time" }),
});

const Instant = (description: string) =>
  Type.Optional(Type.String({ format: "date-time", maxLength: 40, description }));

/** An ISO 8601 instant as epoch ms; the schema already checked its form. */
function instant(path: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw validationFailed(path, "must be an ISO 8601 date-time");
  return ms;
}

export const auditRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  app.get(
    "/admin/audit",
    {
      onRequest: [requireAuth(svc), requireAdmin()],
      schema: {
        tags: ["admin"],
        security: authSecurity,
        summary: "Security events, newest first, by cursor",
        description: `Kept ${svc.config.operations.auditRetentionDays} days (LATCHKEY_AUDIT_RETENTION_DAYS).`,
        querystring: Type.Object(
          {
            userId: Type.Optional(Text({ maxLength: 64 })),
            type: Type.Optional(Text({ maxLength: 64 })),
            since: Instant("Events at or after this instant"),
            until: Instant("Events before this instant"),
            ...PagingQuery,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            events: Type.Array(AuditEventView),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { userId, type, since, until } = request.query;
      await svc.auditLog.flush(); // this node's events of the last 50 ms, too
      const { limit, before } = pageOf(request.query);
      const rows = await svc.store.audit.list({
        userId,
        type,
        since: instant("since", since),
        until: instant("until", until),
        before,
        limit: limit + 1,
      });
      const events = rows.slice(0, limit).map((e) => ({
        id: e.id,
        type: e.type,
        userId: e.user_id,
        sessionId: e.session_id,
        ip: e.ip,
        userAgent: e.user_agent,
        detail: JSON.parse(e.detail) as Record<string, unknown>,
        createdAt: new Date(e.created_at).toISOString(),
      }));
      return { events, nextCursor: nextCursor(rows, limit) };
    },
  );
};
