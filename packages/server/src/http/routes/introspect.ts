import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AuthError } from "../../domain/errors.js";
import { introspect } from "../../flows/introspect.js";
import type { Services } from "../../services.js";
import { callerOf, requireAuth } from "../guards.js";
import { problemResponses } from "../schemas.js";

/** Longer than any access token we sign; a bigger value is refused before any work. */
const MAX_TOKEN_LENGTH = 4096;

const IntrospectBody = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: MAX_TOKEN_LENGTH }),
    token_type_hint: Type.Optional(
      Type.String({ maxLength: 64, description: "Accepted and ignored (RFC 7662 §2.1)" }),
    ),
  },
  { description: "JSON, or `application/x-www-form-urlencoded` as RFC 7662 §2.1 has it" },
);

const Introspection = Type.Object(
  {
    active: Type.Boolean({
      description:
        "false for anything unusable (malformed, bad signature, expired, revoked, ended, " +
        "locked, disabled account, not an access token); an inactive answer has no other field",
    }),
    token_type: Type.Optional(Type.Literal("access_token")),
    iss: Type.Optional(Type.String()),
    aud: Type.Optional(Type.String()),
    sub: Type.Optional(Type.String({ description: "The user id" })),
    sid: Type.Optional(Type.String({ description: "The session id" })),
    jti: Type.Optional(Type.String()),
    iat: Type.Optional(Type.Integer()),
    exp: Type.Optional(Type.Integer()),
    username: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    role: Type.Optional(Type.String()),
    tier: Type.Optional(Type.String()),
    subscriptionStatus: Type.Optional(Type.String()),
    emailVerified: Type.Optional(Type.Boolean()),
    guest: Type.Optional(Type.Boolean()),
    amr: Type.Optional(Type.Array(Type.String())),
  },
  { description: "RFC 7662 §2.2; the claims are the token's own" },
);

/** RFC 7662 token introspection, for services that must see revocations at once. */
export const introspectRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (
  app,
  { svc },
) => {
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string" },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  app.post(
    "/auth/introspect",
    {
      onRequest: requireAuth(svc, { scope: "introspect" }),
      schema: {
        tags: ["auth"],
        summary: "Is this access token active? For services (API token with scope `introspect`)",
        description:
          "RFC 7662. The caller authenticates with an API token that has the `introspect` " +
          "scope; a user's access token is refused (403). The answer is never cached " +
          "(`cache-control: no-store`) and never says why a token is inactive. The user's " +
          "allowedIps are not evaluated (the caller is the service), and introspection does " +
          "not count as session activity.",
        security: [{ apiToken: ["introspect"] }],
        consumes: ["application/json", "application/x-www-form-urlencoded"],
        body: IntrospectBody,
        response: { 200: Introspection, ...problemResponses(400, 401, 403) },
      },
    },
    async (request) => {
      if (!("apiToken" in callerOf(request))) {
        throw new AuthError("forbidden", "Introspection takes an API token with `introspect`");
      }
      const result = await introspect(svc, request.body.token);
      if (!result.active) return { active: false };
      return { active: true, token_type: "access_token" as const, ...result.claims };
    },
  );
};
