import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import {
  API_TOKEN_MAX_DAYS,
  API_TOKEN_NAME_MAX_LENGTH,
  API_TOKEN_SCOPES,
  type ApiToken,
  type Scope,
} from "../../domain/api-token.js";
import { createApiToken, deleteApiToken, listApiTokens } from "../../flows/api-tokens.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { authOf, requireAuth } from "../guards.js";
import { authSecurity, Nullable, problemResponses } from "../schemas.js";

const ScopeName = Type.Unsafe<Scope>({
  type: "string",
  enum: [...API_TOKEN_SCOPES],
  description: 'What the token may do; see README.md "API tokens"',
});
const Scopes = Type.Array(ScopeName, {
  minItems: 1,
  maxItems: API_TOKEN_SCOPES.length,
  uniqueItems: true,
});
const DateTime = Type.String({ format: "date-time" });

const ApiTokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({
    description: "The first 8 characters after `lk_`, for telling tokens apart",
  }),
  scopes: Scopes,
  createdAt: DateTime,
  lastUsedAt: Nullable(DateTime),
  expiresAt: Nullable(DateTime),
});

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

const view = (t: ApiToken) => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  scopes: t.scopes,
  createdAt: iso(t.createdAt),
  lastUsedAt: isoOrNull(t.lastUsedAt),
  expiresAt: isoOrNull(t.expiresAt),
});

/** Managing API tokens takes a session: an API token can never mint or delete one. */
export const tokenRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const tags = ["tokens"];
  const auth = requireAuth(svc);

  app.get(
    "/tokens",
    {
      preHandler: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "The user's API tokens, newest first (never the secret)",
        response: {
          200: Type.Object({ tokens: Type.Array(ApiTokenView) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request) => ({
      tokens: (await listApiTokens(svc, authOf(request).user.id)).map(view),
    }),
  );

  app.post(
    "/tokens",
    {
      preHandler: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Create an API token; its secret is in this response only",
        description:
          "Use it as `Authorization: Bearer lk_…` on routes that accept its scopes. " +
          "Without `expiresInDays` it lives until deleted.",
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: API_TOKEN_NAME_MAX_LENGTH }),
            scopes: Scopes,
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: API_TOKEN_MAX_DAYS })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String(),
            token: Type.String({ description: "The secret, shown once" }),
            prefix: Type.String(),
            name: Type.String(),
            scopes: Scopes,
            createdAt: DateTime,
            expiresAt: Nullable(DateTime),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const { user } = authOf(request);
      const created = await createApiToken(svc, user, request.body, clientInfo(request));
      const { id, prefix, name, scopes, createdAt, expiresAt } = view(created.apiToken);
      reply.header("cache-control", "no-store");
      return reply
        .code(201)
        .send({ id, token: created.token, prefix, name, scopes, createdAt, expiresAt });
    },
  );

  app.delete(
    "/tokens/:id",
    {
      preHandler: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Delete an API token; it is refused at once on every node",
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteApiToken(svc, authOf(request).user.id, request.params.id, clientInfo(request));
      return reply.code(204).send(null);
    },
  );
};
