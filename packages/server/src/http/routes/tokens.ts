import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import {
  API_TOKEN_MAX_DAYS,
  API_TOKEN_NAME_MAX_LENGTH,
  API_TOKEN_PREFIX,
  type ApiToken,
  SCOPE_FORMS,
  SCOPE_GRANTS,
} from "../../domain/api-token.js";
import { createApiToken, deleteApiToken, listApiTokens } from "../../flows/api-tokens.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { authOf, requireAuth } from "../guards.js";
import { authSecurity, Name, Nullable, problemResponses, Text } from "../schemas.js";

/**
 * A plain string here: the accepted values are checked by parseScopes (domain), whose
 * 400 names the accepted forms, where a schema `enum` would only say "must be equal to
 * one of the allowed values". The values are listed in the description and examples.
 */
const ScopeName = Type.String({
  minLength: 1,
  maxLength: 32,
  description:
    `One of ${SCOPE_GRANTS.map((g) => `\`${g}\``).join(", ")}: ${SCOPE_FORMS}. ` +
    "`read` covers every read route (GET /users/me, GET /sessions), `write` every write " +
    "route (DELETE /sessions/:id); neither grants `introspect`. Anything else is 400 " +
    '`validation_failed`. See README.md "API tokens"',
  examples: ["read", "profile:read", "sessions", "*"],
});
// No `minItems`: an empty list reaches parseScopes, whose 400 says what a scope can be.
const Scopes = Type.Array(ScopeName, {
  maxItems: SCOPE_GRANTS.length,
  uniqueItems: true,
  description: "At least one scope; the token may use a route if any of them grants its scope",
});
const StoredScopes = Type.Array(Type.String(), {
  description: "As given at creation (see POST /tokens for what each grants)",
});
const DateTime = Type.String({ format: "date-time" });

const ApiTokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({
    description: "The token's first 11 characters (`lk_` and 8 more), for telling tokens apart",
  }),
  scopes: StoredScopes,
  createdAt: DateTime,
  lastUsedAt: Nullable(DateTime),
  expiresAt: Nullable(DateTime),
});

const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

const view = (t: ApiToken) => ({
  id: t.id,
  name: t.name,
  prefix: `${API_TOKEN_PREFIX}${t.prefix}`,
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
      onRequest: auth,
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
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Create an API token; its secret is in this response only",
        description:
          "Use it as `Authorization: Bearer lk_…` on routes whose scope one of its scopes " +
          "grants: `profile:read` GET /users/me, `sessions:read` GET /sessions, " +
          "`sessions:write` DELETE /sessions/:id, `introspect` POST /auth/introspect. " +
          "A bare resource (`profile`, `sessions`) grants each of its actions, a bare action " +
          "(`read`, `write`) that action on every resource, and `*` everything, `introspect` " +
          "included. Token management, MFA, step-up, password change and logout never accept " +
          "an API token. Without `expiresInDays` it lives until deleted, a password reset or an " +
          "admin enabling the account after disabling it. The " +
          "owner is mailed a notice. 403 `forbidden` beyond the tier's `apiTokens` limit, and " +
          "for a guest with an email (anyone who knows it signs in as the guest): upgrade first.",
        body: Type.Object(
          {
            name: Name(API_TOKEN_NAME_MAX_LENGTH),
            scopes: Scopes,
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: API_TOKEN_MAX_DAYS })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Composite([
            ApiTokenView,
            Type.Object({ token: Type.String({ description: "The secret, shown once" }) }),
          ]),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request, reply) => {
      const created = await createApiToken(svc, authOf(request), request.body, clientInfo(request));
      return reply.code(201).send({ ...view(created.apiToken), token: created.token });
    },
  );

  app.delete(
    "/tokens/:id",
    {
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Delete an API token; it is refused at once on every node",
        params: Type.Object({ id: Text({ maxLength: 64 }) }),
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await deleteApiToken(svc, authOf(request).user.id, request.params.id, clientInfo(request));
      return reply.code(204).send(null);
    },
  );
};
