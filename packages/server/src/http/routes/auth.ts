import { type FastifyPluginAsyncTypebox, Type } from "@fastify/type-provider-typebox";
import { AuthError } from "../../domain/errors.js";
import { verifiedClaims } from "../../flows/authenticate.js";
import { login } from "../../flows/login.js";
import { logout, logoutAll, sessionOfRefreshToken } from "../../flows/logout.js";
import { refresh } from "../../flows/refresh.js";
import { register } from "../../flows/register.js";
import { setup } from "../../flows/setup.js";
import type { Services } from "../../services.js";
import { clearTokenCookies } from "../cookies.js";
import { accessCredential, clientInfo, refreshCredential } from "../credentials.js";
import { authOf, publicRateLimit, requireAuth } from "../guards.js";
import {
  authSecurity,
  Email,
  Password,
  problemResponses,
  TokenResponse,
  Username,
} from "../schemas.js";
import { sendTokens } from "../token-reply.js";

const tags = ["auth"];
// Null admits a request with no body at all (Fastify validates a missing body as null):
// the usual call carries its token in a cookie or the Authorization header.
const RefreshBody = Type.Union([
  Type.Object({ refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })) }),
  Type.Null(),
]);

export const authRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const limited = publicRateLimit(svc);

  app.post(
    "/auth/setup",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Create the first admin (only while no user exists)",
        body: Type.Object(
          { username: Username, email: Type.Optional(Email), password: Password },
          { additionalProperties: false },
        ),
        response: { 201: Type.Ref(TokenResponse), ...problemResponses(400, 409, 429) },
      },
    },
    async (request, reply) =>
      sendTokens(reply, svc.config, await setup(svc, request.body, clientInfo(request)), 201),
  );

  app.post(
    "/auth/register",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Create an account and sign in",
        body: Type.Object(
          { email: Email, password: Password, username: Type.Optional(Username) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Ref(TokenResponse), ...problemResponses(400, 409, 429) },
      },
    },
    async (request, reply) =>
      sendTokens(reply, svc.config, await register(svc, request.body, clientInfo(request)), 201),
  );

  app.post(
    "/auth/login",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Sign in with email or username and password",
        body: Type.Object(
          {
            identifier: Type.String({ minLength: 1, maxLength: 254 }),
            password: Password,
            rememberMe: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) =>
      sendTokens(reply, svc.config, await login(svc, request.body, clientInfo(request))),
  );

  app.post(
    "/auth/refresh",
    {
      schema: {
        tags,
        summary: "Rotate the refresh token and get a new pair",
        description:
          "The refresh token comes from the JSON body, `Authorization: Bearer`, or the `lk_refresh` cookie. " +
          "A token already rotated is answered with the same successor for the grace window; after it, " +
          "presenting it revokes the session (`refresh_token_reused`).",
        body: RefreshBody,
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const credential = refreshCredential(request, svc.config, request.body ?? undefined);
      if (!credential) throw new AuthError("unauthenticated", "A refresh token is required");
      return sendTokens(
        reply,
        svc.config,
        await refresh(svc, credential.token, clientInfo(request)),
      );
    },
  );

  app.post(
    "/auth/logout",
    {
      schema: {
        tags,
        summary: "End this session (access or refresh token) and clear the cookies",
        body: RefreshBody,
        response: { 204: Type.Null(), ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const sessionId = await sessionToEnd(svc, request);
      if (!sessionId)
        throw new AuthError("unauthenticated", "An access or refresh token is required");
      await logout(svc, sessionId);
      clearTokenCookies(reply, svc.config);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/auth/logout/all",
    {
      preHandler: requireAuth(svc),
      schema: {
        tags,
        summary: "End every session of this user (log out of all devices)",
        security: authSecurity,
        response: { 204: Type.Null(), ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      await logoutAll(svc, authOf(request).user.id);
      clearTokenCookies(reply, svc.config);
      return reply.code(204).send(null);
    },
  );
};

/**
 * The session a logout ends: named by a genuine access token, else (absent or
 * expired) by a refresh token. Whether it is still live does not matter: logging
 * out twice, or out of a revoked session, still clears the cookies.
 */
async function sessionToEnd(
  svc: Services,
  request: Parameters<typeof refreshCredential>[0] & { body?: { refreshToken?: string } | null },
): Promise<string | undefined> {
  const access = request.body?.refreshToken ? undefined : accessCredential(request, svc.config);
  if (access) {
    try {
      return (await verifiedClaims(svc, access.token)).sid;
    } catch (err) {
      if (!(err instanceof AuthError) || err.code !== "token_expired") throw err;
    }
  }
  const refreshToken = refreshCredential(request, svc.config, request.body ?? undefined);
  if (!refreshToken) return undefined;
  const sessionId = sessionOfRefreshToken(svc, refreshToken.token);
  if (!sessionId) throw new AuthError("invalid_token", "The refresh token is not valid");
  return sessionId;
}
