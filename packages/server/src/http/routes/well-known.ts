import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { Services } from "../../services.js";

/** JWKS is re-read at most this often, so keys rotated on another node appear quickly. */
const JWKS_FRESHNESS_MS = 5_000;

const Url = (description: string) => Type.String({ format: "uri", description });

/**
 * RFC 8414 / OpenID Connect Discovery metadata for what Latchkey is: an issuer of
 * access tokens that services verify with the JWKS. It issues no ID tokens and has no
 * authorization endpoint; the endpoints listed are Latchkey's own JSON routes.
 */
const Discovery = Type.Object({
  issuer: Url("The `iss` of every access token: the public URL"),
  jwks_uri: Url("The keys that verify access tokens (EdDSA with `kid`; empty in HS256 mode)"),
  token_endpoint: Url(
    "POST /auth/refresh: the refresh token as JSON `{ refreshToken }`, Bearer or the " +
      "lk_refresh cookie, answered with Latchkey's camelCase token response; not the RFC 6749 " +
      "form-encoded `grant_type` exchange",
  ),
  userinfo_endpoint: Url(
    "GET /users/me with an access token: the user object (its `id` is the tokens' `sub`)",
  ),
  introspection_endpoint: Url(
    "POST /auth/introspect (RFC 7662) with an API token of scope `introspect`",
  ),
  id_token_signing_alg_values_supported: Type.Array(Type.String(), {
    description: "The access tokens' algorithm (Latchkey issues no ID tokens)",
  }),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  grant_types_supported: Type.Array(Type.String()),
  subject_types_supported: Type.Array(Type.String()),
  claims_supported: Type.Array(Type.String(), { description: "The access-token claims" }),
});

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
    {
      schema: {
        tags,
        summary: "Discovery metadata (issuer, jwks_uri, endpoints)",
        response: { 200: Discovery },
      },
    },
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
