import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { unlock } from "../../flows/unlock.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { authOf, requireAuth } from "../guards.js";
import { authSecurity, problemResponses, ReauthBody, TokenResponse } from "../schemas.js";
import { sendTokens } from "../token-reply.js";

export const screenLockRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (
  app,
  { svc },
) => {
  app.post(
    "/sessions/lock",
    {
      onRequest: requireAuth(svc),
      schema: {
        tags: ["sessions"],
        summary: "Lock this session now: 423 screen_locked until POST /auth/unlock",
        security: authSecurity,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 423) },
      },
    },
    async (request, reply) => {
      await svc.sessions.lock(authOf(request).session.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/auth/unlock",
    {
      onRequest: requireAuth(svc, { allowLocked: true }),
      schema: {
        tags: ["auth"],
        summary: "Lift this session's screen lock with the password, a TOTP or a backup code",
        description:
          "Exactly one of `password` or `code` (a TOTP code, or a backup code, which is used " +
          "up). Access tokens issued before the unlock stay refused; the answer carries new tokens. " +
          "A session also locks by itself after `screenLockMinutes` without requests. The " +
          "session's access token is taken even after it expired, as long as it was valid at " +
          "the session's last use before the lock (refresh answers 423 while locked). Failures " +
          "count in the per-user limit shared with step-up and MFA codes.",
        security: authSecurity,
        body: ReauthBody,
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) =>
      sendTokens(
        reply,
        svc.config,
        await unlock(svc, authOf(request), request.body, clientInfo(request)),
      ),
  );
};
