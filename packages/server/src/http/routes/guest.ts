import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { startGuest } from "../../flows/guest.js";
import { upgradeGuest } from "../../flows/guest-upgrade.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { authOf, publicRateLimit, requireAuth } from "../guards.js";
import {
  authSecurity,
  Email,
  GuestName,
  Password,
  problemResponses,
  TokenResponse,
  Username,
  UserView,
} from "../schemas.js";
import { sendTokens, sendUserWithAccessToken } from "../token-reply.js";

const tags = ["auth"];

const GuestTokenResponse = Type.Composite([
  TokenResponse,
  Type.Object({
    returningGuest: Type.Boolean({ description: "The email matched an earlier guest" }),
  }),
]);

export const guestRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  app.post(
    "/auth/guest",
    {
      preHandler: publicRateLimit(svc),
      schema: {
        tags,
        summary: "Start a 50-hour guest session",
        description:
          "Creates a guest (`guest: true`, tier `guest`, no password) with a fixed 50-hour session " +
          "(`sessionExpiresIn` 180000), or, when `email` matches an earlier guest, signs that guest in " +
          "again with `returningGuest: true`. The guest's username and email reserve nothing: a real " +
          "account may take either. A returning guest whose sessions were ended while signing " +
          "in gets 401 `session_revoked`.",
        body: Type.Object(
          { username: GuestName, email: Type.Optional(Email) },
          { additionalProperties: false },
        ),
        response: { 201: GuestTokenResponse, ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const tokens = await startGuest(svc, request.body, clientInfo(request));
      return sendTokens(reply, svc.config, tokens, 201, { returningGuest: tokens.returningGuest });
    },
  );

  app.post(
    "/auth/guest/upgrade",
    {
      onRequest: requireAuth(svc),
      schema: {
        tags,
        summary: "Turn this guest into a full account (same id)",
        description:
          "Sets the email (unverified), password and username (default: the guest's name), tier " +
          "`free`; answers with a reissued access token. 409 `conflict` for a non-guest, or when " +
          "the email or username is taken. The guest's other sessions end (its email let anyone open " +
          "one); this one keeps its end; sign in again for a full one.",
        security: authSecurity,
        body: Type.Object(
          { email: Email, password: Password, username: Type.Optional(Username) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            user: Type.Ref(UserView),
            accessToken: Type.Optional(
              Type.String({ description: "Omitted in cookie delivery mode" }),
            ),
          }),
          ...problemResponses(400, 401, 403, 409),
        },
      },
    },
    async (request, reply) => {
      const upgraded = await upgradeGuest(svc, authOf(request), request.body, clientInfo(request));
      return sendUserWithAccessToken(reply, svc.config, upgraded.user, upgraded);
    },
  );
};
