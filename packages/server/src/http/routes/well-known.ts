import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { Services } from "../../services.js";

/** JWKS is re-read at most this often, so keys rotated on another node appear quickly. */
const JWKS_FRESHNESS_MS = 5_000;

export const wellKnownRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (
  app,
  { svc },
) => {
  const tags = ["discovery"];
  app.get(
    "/.well-known/jwks.json",
    {
      schema: {
        tags,
        summary: "Public keys that verify access tokens (every key not yet expired)",
        response: {
          200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
        },
      },
    },
    async (_request, reply) => {
      await svc.keys.reloadIfOlderThan(JWKS_FRESHNESS_MS);
      reply.header("cache-control", "public, max-age=300");
      return { keys: svc.keys.keyring.publicJwks };
    },
  );

  app.get(
    "/.well-known/openid-configuration",
    { schema: { tags, summary: "Discovery metadata (issuer, jwks_uri, endpoints)" } },
    async () => {
      const base = svc.config.publicUrl;
      return {
        issuer: svc.config.issuer,
        jwks_uri: `${base}/.well-known/jwks.json`,
        token_endpoint: `${base}/auth/refresh`,
        userinfo_endpoint: `${base}/users/me`,
        introspection_endpoint: `${base}/auth/introspect`,
        id_token_signing_alg_values_supported: [svc.keys.keyring.signing.alg],
        token_endpoint_auth_methods_supported: ["none"],
        grant_types_supported: ["refresh_token"],
        subject_types_supported: ["public"],
        claims_supported: [
          "iss",
          "aud",
          "sub",
          "sid",
          "jti",
          "iat",
          "exp",
          "typ",
          "role",
          "tier",
          "subscriptionStatus",
          "username",
          "emailVerified",
          "guest",
          "amr",
        ],
      };
    },
  );
};
