import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import type { Services } from "../../services.js";
import { authOf, requireAuth } from "../guards.js";
import { authSecurity, problemResponses, UserView } from "../schemas.js";
import { userView } from "../token-reply.js";

export const userRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  app.get(
    "/users/me",
    {
      preHandler: requireAuth(svc),
      schema: {
        tags: ["users"],
        summary: "The signed-in user's profile",
        security: authSecurity,
        response: { 200: Type.Ref(UserView), ...problemResponses(401, 403) },
      },
    },
    async (request) => userView(authOf(request).user, svc.config),
  );
};
