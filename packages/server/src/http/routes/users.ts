import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import type { FastifyReply } from "fastify";
import type { User } from "../../domain/user.js";
import type { Services } from "../../services.js";
import { authOf, requireAuth } from "../guards.js";
import { authSecurity, problemResponses, UserView } from "../schemas.js";
import { userView } from "../token-reply.js";

export const userRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  // GET /users/me is the hottest route. Its body depends only on the user object,
  // which the session cache replaces whenever the user is re-read or changes, so
  // the JSON is rendered once per cached user (measured: bench/RESULTS.md).
  const rendered = new WeakMap<User, string>();

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
    async (request, reply) => {
      const { user } = authOf(request);
      let body = rendered.get(user);
      if (body === undefined) {
        body = JSON.stringify(userView(user, svc.config));
        rendered.set(user, body);
      }
      // A string with a JSON content type is sent as it is, past the typed serializer.
      return (reply as FastifyReply).type("application/json; charset=utf-8").send(body);
    },
  );
};
