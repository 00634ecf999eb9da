import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyReply } from "fastify";
import { MAX_ALLOWED_IPS } from "../../domain/ip-rules.js";
import type { User } from "../../domain/user.js";
import { deleteAccount } from "../../flows/delete-account.js";
import { updateProfile } from "../../flows/profile.js";
import type { Services } from "../../services.js";
import { clearTokenCookies } from "../cookies.js";
import { clientInfo } from "../credentials.js";
import { authOf, callerOf, requireAuth, requireStepUp } from "../guards.js";
import {
  authSecurity,
  Email,
  Nullable,
  problemResponses,
  scopedSecurity,
  stepUpSecurity,
  Username,
  UserView,
} from "../schemas.js";
import { sendUserWithAccessToken, userView } from "../token-reply.js";

export const userRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  // GET /users/me is the hottest route. Its body depends only on the user object,
  // which the session cache replaces whenever the user is re-read or changes, so
  // the JSON is rendered once per cached user (measured: bench/RESULTS.md).
  const rendered = new WeakMap<User, string>();

  app.get(
    "/users/me",
    {
      onRequest: requireAuth(svc, { scope: "profile:read" }),
      schema: {
        tags: ["users"],
        summary: "The signed-in user's profile",
        security: scopedSecurity("profile:read"),
        response: { 200: Type.Ref(UserView), ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const { user } = callerOf(request);
      let body = rendered.get(user);
      if (body === undefined) {
        body = JSON.stringify(userView(user, svc.config));
        rendered.set(user, body);
      }
      // A string with a JSON content type is sent as it is, past the typed serializer.
      return (reply as FastifyReply).type("application/json; charset=utf-8").send(body);
    },
  );

  app.patch(
    "/users/me",
    {
      onRequest: requireAuth(svc),
      schema: {
        tags: ["users"],
        summary: "Change the profile and its policies; answers with a reissued access token",
        description:
          "`email` sets emailVerified to false. `allowedIps` (IPv4/IPv6 addresses and CIDRs, " +
          "IPv4 as four decimal numbers without leading zeros, no zone index; empty clears) apply at once, to this session too: a list without the caller's address " +
          "locks it out (403 `ip_not_allowed`) until cleared from an allowed one. " +
          "`sessionDurationMinutes` applies to new sessions, up to the server's ceiling " +
          "(`tokens.maxSessionDurationSeconds`, by default the rememberMe lifetime: 90 days); " +
          "a larger value is 400 `validation_failed`, and one stored before the ceiling was " +
          "lowered is cut to it. `singleSession` makes each new sign-in end the others. " +
          "`screenLockMinutes` locks a session idle that long (423 `screen_locked` until POST " +
          "/auth/unlock); an account unlock could not check (a guest, or one with neither a " +
          "password nor MFA: provider sign-in only) cannot set it (403 `forbidden`), only " +
          "clear it with null.",
        security: authSecurity,
        body: Type.Object(
          {
            username: Type.Optional(Username),
            email: Type.Optional(Email),
            allowedIps: Type.Optional(
              Type.Array(Type.String({ maxLength: 64 }), { maxItems: MAX_ALLOWED_IPS }),
            ),
            sessionDurationMinutes: Type.Optional(
              Nullable(Type.Integer({ minimum: 5, maximum: 525_600 })),
            ),
            singleSession: Type.Optional(Type.Boolean()),
            screenLockMinutes: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1440 }))),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: {
          200: Type.Object({ user: Type.Ref(UserView), accessToken: Type.Optional(Type.String()) }),
          ...problemResponses(400, 401, 403, 409, 423),
        },
      },
    },
    async (request, reply) => {
      const updated = await updateProfile(svc, authOf(request), request.body, clientInfo(request));
      return sendUserWithAccessToken(reply, svc.config, updated.user, updated);
    },
  );

  app.delete(
    "/users/me",
    {
      onRequest: [requireAuth(svc), requireStepUp(svc)],
      schema: {
        tags: ["users"],
        summary: "Delete the account with every session, API token and MFA secret",
        description:
          "Needs a step-up token. Clears the cookies; the audit trail keeps the user id. The " +
          "last enabled admin cannot delete itself (409 `conflict`): promote another admin first.",
        security: stepUpSecurity,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 409) },
      },
    },
    async (request, reply) => {
      await deleteAccount(svc, authOf(request).user.id, clientInfo(request));
      clearTokenCookies(reply, svc.config);
      return reply.code(204).send(null);
    },
  );
};
