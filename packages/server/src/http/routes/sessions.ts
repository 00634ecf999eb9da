import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { revokeOwnSession } from "../../flows/logout.js";
import type { Services } from "../../services.js";
import { clearTokenCookies } from "../cookies.js";
import { clientInfo } from "../credentials.js";
import { callerOf, requireAuth } from "../guards.js";
import { Nullable, problemResponses, scopedSecurity, Text } from "../schemas.js";

const SessionView = Type.Object({
  id: Type.String(),
  ip: Nullable(Type.String()),
  userAgent: Nullable(Type.String()),
  browser: Nullable(Type.String()),
  os: Nullable(Type.String()),
  createdAt: Type.String({ format: "date-time" }),
  lastSeenAt: Type.String({ format: "date-time" }),
  expiresAt: Type.String({ format: "date-time" }),
  current: Type.Boolean(),
});

const iso = (ms: number) => new Date(ms).toISOString();

export const sessionRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const tags = ["sessions"];

  app.get(
    "/sessions",
    {
      onRequest: requireAuth(svc, { scope: "sessions:read" }),
      schema: {
        tags,
        security: scopedSecurity("sessions:read"),
        summary: "The user's live sessions, newest first",
        response: {
          200: Type.Object({ sessions: Type.Array(SessionView) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request) => {
      const caller = callerOf(request);
      const { user } = caller;
      // An API token has no session of its own: none is current.
      const current = "apiToken" in caller ? undefined : caller.session;
      const sessions = await svc.store.sessions.listActive(user.id, svc.clock.now());
      return {
        sessions: sessions.map((s) => ({
          id: s.id,
          ip: s.ip,
          userAgent: s.userAgent,
          browser: s.browser,
          os: s.os,
          createdAt: iso(s.createdAt),
          // This session is being seen now; its lastSeenAt write is off the response
          // path (DESIGN.md), so the row read above may not show it yet.
          lastSeenAt: iso(
            s.id === current?.id ? Math.max(s.lastSeenAt, current.lastSeenAt) : s.lastSeenAt,
          ),
          expiresAt: iso(s.absoluteExpiresAt),
          current: s.id === current?.id,
        })),
      };
    },
  );

  app.delete(
    "/sessions/:id",
    {
      onRequest: requireAuth(svc, { scope: "sessions:write" }),
      schema: {
        tags,
        security: scopedSecurity("sessions:write"),
        summary: "Revoke one of the user's sessions",
        description:
          "Revoking the session the request came from also clears its cookies, as logout does.",
        params: Type.Object({ id: Text({ maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const caller = callerOf(request);
      const { id } = request.params;
      await revokeOwnSession(svc, caller.user.id, id, clientInfo(request));
      // Ending the session this request came from is a logout: its cookies go too.
      if ("session" in caller && caller.session.id === id) {
        clearTokenCookies(reply, svc.config);
      }
      return reply.code(204).send(null);
    },
  );
};
