import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AuthError } from "../../domain/errors.js";
import { oauthCallback } from "../../flows/oauth/callback.js";
import { exchangeOAuthCode } from "../../flows/oauth/exchange.js";
import { issueLinkToken, LINK_TOKEN_TTL_S, unlinkIdentity } from "../../flows/oauth/link.js";
import { providerOf } from "../../flows/oauth/providers.js";
import {
  MAX_REDIRECT_LENGTH,
  openStartState,
  START_TTL_S,
  startOAuth,
} from "../../flows/oauth/start.js";
import type { Services } from "../../services.js";
import { clearOAuthCookie, OAUTH_COOKIE, setOAuthCookie } from "../cookies.js";
import { clientInfo } from "../credentials.js";
import { authOf, noStore, publicRateLimit, requireAuth, requireStepUp } from "../guards.js";
import {
  callbackUrl,
  DEFAULT_REDIRECT,
  redirectAfterCallback,
  wantsJson,
  withParams,
} from "../oauth-reply.js";
import {
  MfaPendingResponse,
  problemResponses,
  stepUpSecurity,
  Text,
  TokenResponse,
} from "../schemas.js";
import { sendLoginResult } from "../token-reply.js";

const tags = ["oauth"];
const ProviderParams = Type.Object({ provider: Text({ maxLength: 64 }) });
const Redirect = { description: "302 to the provider", type: "null" } as const;
const QueryValue = Type.Optional(Type.String({ maxLength: 4096 }));

export const oauthRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const limited = publicRateLimit(svc);

  app.get(
    "/auth/oauth/providers",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "The configured sign-in providers",
        response: {
          200: Type.Array(
            Type.Object({
              id: Type.String(),
              name: Type.String(),
              type: Type.Union([Type.Literal("oidc"), Type.Literal("oauth2")]),
            }),
          ),
          ...problemResponses(429),
        },
      },
    },
    async () => svc.oauth.providers.list(),
  );

  app.get(
    "/auth/oauth/:provider/start",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Begin a sign-in (or, with `link`, a linking) at a provider",
        description:
          "302 to the provider's authorization endpoint with PKCE (S256), `state` and, for OpenID " +
          "Connect, `nonce`. These, the code verifier and the browser context (IP, a digest of the user agent, " +
          "`redirect`) travel in the lk_oauth cookie (AES-256-GCM sealed, HttpOnly, SameSite=Lax, " +
          "Path=/auth/oauth, 10 minutes); one flow per browser at a time. `redirect`: an absolute " +
          "http(s) URL on an allowed origin, without user info, at most " +
          `${MAX_REDIRECT_LENGTH} characters (so the cookie fits a browser's 4096 bytes), else ` +
          "400 `validation_failed`; default /ui/. `link`: a token from POST /auth/oauth/link-token (used up here; 400 `invalid_or_expired_token`). With " +
          "`Accept: application/json` the answer is `{ authUrl }` instead of the redirect.",
        params: ProviderParams,
        querystring: Type.Object(
          {
            redirect: Type.Optional(Type.String({ maxLength: MAX_REDIRECT_LENGTH })),
            link: QueryValue,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ authUrl: Type.String() }),
          302: Redirect,
          ...problemResponses(400, 404, 429),
        },
      },
    },
    async (request, reply) => {
      const client = clientInfo(request);
      const started = await startOAuth(svc, request.params.provider, request.query, client);
      setOAuthCookie(reply, svc.config, started.sealed, START_TTL_S);
      reply.header("cache-control", "no-store");
      if (wantsJson(request)) return reply.send({ authUrl: started.authUrl });
      return reply.redirect(started.authUrl, 302);
    },
  );

  app.get(
    "/auth/oauth/:provider/callback",
    {
      preHandler: limited,
      // The handler decides: a malformed query goes back to the redirect when one is known.
      attachValidation: true,
      schema: {
        tags,
        summary: "Where the provider sends the browser back",
        description:
          "Checks the lk_oauth cookie, `state` and that the browser's user agent is the one " +
          "that began the flow (else `oauth_state_mismatch`), exchanges the code (PKCE), " +
          "validates the ID token (signature by the provider's JWKS, issuer, audience, " +
          "nonce), reads the user info, then signs in the linked account; links an account " +
          "with the same email only when the provider says it is verified (else `email_in_use`), and then, if no address " +
          "of that account was ever verified, the provider's proof claims it: its password, " +
          "TOTP, passkeys, API tokens, earlier identities and sessions end (an account that " +
          "proved an earlier address and moved to this one unconfirmed gets `email_in_use`); " +
          "or creates an account. Then 302 to `redirect` (default /ui/): with session cookies; with " +
          "the lk_mfa cookie and `mfaRequired=true` for MFA users; in `body` delivery with a " +
          "one-time `code` (60 s) for POST /auth/oauth/exchange; `linked=<provider>` after " +
          "linking. Errors 302 to `redirect` with `error=<code>` (`oauth_denied` when the user " +
          "declined, `validation_failed` when the query is malformed: a parameter repeated or " +
          "over 4096 characters) and clear lk_oauth; without a valid lk_oauth cookie there is " +
          "no redirect to trust, so 400 problem+json: `validation_failed` for a malformed " +
          "query, else `oauth_state_mismatch`.",
        params: ProviderParams,
        querystring: Type.Object(
          { code: QueryValue, state: QueryValue, error: QueryValue, iss: QueryValue },
          { additionalProperties: true },
        ),
        response: {
          302: { ...Redirect, description: "302 to `redirect`" },
          ...problemResponses(400, 429),
        },
      },
    },
    async (request, reply) => {
      const start = openStartState(svc, request.cookies[OAUTH_COOKIE]);
      clearOAuthCookie(reply, svc.config);
      reply.header("cache-control", "no-store").header("referrer-policy", "no-referrer");
      if (!start) {
        throw (
          request.validationError ??
          new AuthError(
            "oauth_state_mismatch",
            "No sign-in was started in this browser, or it expired",
          )
        );
      }
      const target = new URL(start.redirect ?? DEFAULT_REDIRECT, `${svc.config.publicUrl}/`);
      try {
        if (request.validationError) {
          throw new AuthError("validation_failed", "The provider's answer is malformed");
        }
        const provider = providerOf(svc, request.params.provider);
        const url = callbackUrl(provider.redirectUri, request);
        const result = await oauthCallback(
          svc,
          provider.settings.id,
          start,
          url,
          clientInfo(request),
        );
        return redirectAfterCallback(reply, svc.config, target, result);
      } catch (err) {
        if (!(err instanceof AuthError)) request.log.error({ err }, "oauth callback failed");
        const code = err instanceof AuthError ? err.code : "internal_error";
        return reply.redirect(withParams(target, { error: code }), 302);
      }
    },
  );

  app.post(
    "/auth/oauth/exchange",
    {
      onRequest: noStore,
      preHandler: limited,
      schema: {
        tags,
        summary: "Trade the callback's one-time code for tokens (`body` delivery)",
        description:
          "The code works once, for 60 seconds, and not after every session of the account " +
          "ended (password reset, logout everywhere); 400 `invalid_code` otherwise. MFA users get " +
          "`{ mfaRequired: true, mfaToken, expiresIn }` instead of tokens. The session records " +
          "the browser that began the sign-in.",
        body: Type.Object(
          { code: Type.String({ minLength: 1, maxLength: 128 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Union([Type.Ref(TokenResponse), MfaPendingResponse]),
          ...problemResponses(400, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const result = await exchangeOAuthCode(svc, request.body.code, clientInfo(request));
      return sendLoginResult(reply, svc.config, result);
    },
  );

  app.post(
    "/auth/oauth/link-token",
    {
      onRequest: [requireAuth(svc), requireStepUp(svc)],
      schema: {
        tags,
        summary: "A token to connect another provider to this account",
        description:
          "Needs a step-up token. The link token (a JWT, `typ` oauth_link, bound to this user " +
          "and session, 5 minutes, single use) goes to GET /auth/oauth/:provider/start?link=…. " +
          "403 `forbidden` for a guest with an email (anyone who knows it signs in as the " +
          "guest): upgrade first.",
        security: stepUpSecurity,
        response: {
          200: Type.Object({
            linkToken: Type.String(),
            expiresIn: Type.Integer({ description: `Seconds it lives (${LINK_TOKEN_TTL_S})` }),
          }),
          ...problemResponses(401, 403, 423),
        },
      },
    },
    async (request) => issueLinkToken(svc, authOf(request)),
  );

  app.delete(
    "/users/me/identities/:provider",
    {
      onRequest: [requireAuth(svc), requireStepUp(svc)],
      schema: {
        tags: ["users"],
        summary: "Unlink a federated identity",
        description:
          "Needs a step-up token (an account with no password, TOTP or passkey passes in the " +
          "first 5 minutes of its session instead). 409 `conflict` when it is the last way to " +
          "sign in (no password, no other identity and no passkey); 404 when no identity of " +
          "that provider is linked.",
        security: stepUpSecurity,
        params: ProviderParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404, 409, 423) },
      },
    },
    async (request, reply) => {
      await unlinkIdentity(svc, authOf(request), request.params.provider, clientInfo(request));
      return reply.code(204).send(null);
    },
  );
};
