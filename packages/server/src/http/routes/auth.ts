import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { isApiToken } from "../../domain/api-token.js";
import { AuthError } from "../../domain/errors.js";
import { verifiedClaims } from "../../flows/authenticate.js";
import { login } from "../../flows/login.js";
import { logout, logoutAll, sessionOfRefreshToken } from "../../flows/logout.js";
import { completeMfaLogin } from "../../flows/mfa-login.js";
import { changePassword } from "../../flows/password-change.js";
import { refresh } from "../../flows/refresh.js";
import { register } from "../../flows/register.js";
import { setup } from "../../flows/setup.js";
import { stepUp } from "../../flows/step-up.js";
import type { Services } from "../../services.js";
import { clearMfaCookie, clearTokenCookies, MFA_COOKIE, REFRESH_COOKIE } from "../cookies.js";
import {
  accessCredential,
  clientInfo,
  mfaCredential,
  refreshCredential,
  refusedCookie,
} from "../credentials.js";
import { authOf, noStore, publicRateLimit, requireAuth, requireStepUp } from "../guards.js";
import {
  authSecurity,
  Email,
  MfaPendingResponse,
  mfaSecurity,
  Password,
  problemResponses,
  ReauthBody,
  SecondFactorCode,
  stepUpSecurity,
  Text,
  TokenResponse,
  Username,
  VerificationRequired,
} from "../schemas.js";
import { sendLoginResult, sendStepUp, sendTokens } from "../token-reply.js";
import { PasskeyAnswerBody } from "../webauthn-schemas.js";

const tags = ["auth"];
// Null admits a request with no body at all (Fastify validates a missing body as null):
// the usual call carries its token in a cookie or the Authorization header. The length
// bound is loose so that another kind of token sent here (an access JWT is ~800
// characters) gets 401 invalid_token like any token we did not issue.
const RefreshBody = Type.Union([
  Type.Object({ refreshToken: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })) }),
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
        description:
          "201 with tokens, and a verification link is mailed. When `emailVerificationRequired` is " +
          "on, 202 `{ verificationRequired: true }` instead and no session: sign in after following " +
          "the link. The 202 is the same when the address already has an account (its owner is " +
          "mailed instead), so sign-up does not reveal which addresses have accounts.",
        body: Type.Object(
          { email: Email, password: Password, username: Type.Optional(Username) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Ref(TokenResponse),
          202: VerificationRequired,
          ...problemResponses(400, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const result = await register(svc, request.body, clientInfo(request));
      if (result.kind === "verification_required") {
        return reply.code(202).send({ verificationRequired: true as const });
      }
      return sendTokens(reply, svc.config, result.tokens, 201);
    },
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
            identifier: Text({ minLength: 1, maxLength: 254 }),
            password: Password,
            rememberMe: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        description:
          "When the account has MFA on, the answer is `{ mfaRequired: true, mfaToken, expiresIn }` " +
          "(and the lk_mfa cookie) instead of tokens; no session exists until POST /auth/login/mfa. " +
          "Failed attempts count per IP and per account (429 `rate_limited` with Retry-After, even " +
          "for the right password); an address the account signed in from before counts apart, " +
          "so failures from elsewhere do not lock its owner out there.",
        response: {
          200: Type.Union([Type.Ref(TokenResponse), MfaPendingResponse]),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const result = await login(svc, request.body, clientInfo(request));
      return sendLoginResult(reply, svc.config, result);
    },
  );

  app.post(
    "/auth/login/mfa",
    {
      onRequest: noStore,
      preHandler: limited,
      schema: {
        tags,
        summary: "Finish an MFA sign-in with a TOTP or backup code, or a passkey",
        description:
          "The MFA token from POST /auth/login comes as `X-MFA-Token` or the lk_mfa cookie; it works " +
          "once and for 10 minutes. `code` is a 6-digit TOTP code (each accepted once) or an " +
          "8-character backup code (each works once); `webauthn` is a passkey assertion over a " +
          "challenge from POST /auth/login/mfa/webauthn/options. Failures count per account (5 per " +
          "15 min, then 429), an address the account signed in from before apart, and apart " +
          "from step-up's: the password alone cannot lock its owner out. Errors: 400 `invalid_code`, `webauthn_failed`; 401 `unauthenticated` " +
          "(no MFA token), `invalid_token` (forged or already used), `token_expired`; such a 401 " +
          "for the lk_mfa cookie's token clears the cookie (a wrong code keeps it, and so does a " +
          "token a concurrent attempt holds).",
        security: mfaSecurity,
        body: Type.Union([
          Type.Object({ code: SecondFactorCode }, { additionalProperties: false }),
          Type.Object({ webauthn: PasskeyAnswerBody }, { additionalProperties: false }),
        ]),
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const mfaToken = mfaCredential(request, svc.config);
      if (!mfaToken) throw new AuthError("unauthenticated", "An MFA token is required");
      const client = clientInfo(request);
      const tokens = await completeMfaLogin(svc, mfaToken, request.body, client).catch(
        (err: unknown) => {
          if (refusedCookie(err, request, MFA_COOKIE, mfaToken)) clearMfaCookie(reply, svc.config);
          throw err;
        },
      );
      clearMfaCookie(reply, svc.config);
      return sendTokens(reply, svc.config, tokens);
    },
  );

  app.post(
    "/auth/step-up",
    {
      onRequest: requireAuth(svc),
      schema: {
        tags,
        summary:
          "Confirm the password, a TOTP or backup code or a passkey again for sensitive actions",
        description:
          "Exactly one of `password`, `code` (TOTP or a backup code, which is used up; MFA users) or " +
          "`webauthn` (an assertion over a " +
          "challenge from POST /auth/step-up/webauthn/options). Answers a step-up token bound to " +
          "this session and user, valid 5 minutes and reusable meanwhile, in the body and as the " +
          "lk_step_up cookie (per the delivery mode: `cookie` only the cookie, `body` only the " +
          "body); send it as `X-Step-Up-Token` to routes that require it. Errors: " +
          "401 `invalid_credentials` (wrong password), 400 `invalid_code` (wrong or reused code), " +
          "400 `webauthn_failed` (refused passkey), " +
          "429 after 5 failures in 15 minutes.",
        security: authSecurity,
        body: Type.Union([
          ReauthBody,
          Type.Object({ webauthn: PasskeyAnswerBody }, { additionalProperties: false }),
        ]),
        response: {
          200: Type.Object({
            stepUpToken: Type.Optional(
              Type.String({ description: "Omitted in cookie delivery mode" }),
            ),
            expiresIn: Type.Integer({ description: "Seconds the step-up token lives" }),
          }),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const grant = await stepUp(svc, authOf(request), request.body, clientInfo(request));
      return sendStepUp(reply, svc.config, grant);
    },
  );

  app.post(
    "/auth/password/change",
    {
      onRequest: [requireAuth(svc), requireStepUp(svc)],
      schema: {
        tags,
        summary: "Change the password; other sessions end, this one gets new tokens",
        description:
          "Needs a step-up token. Every other session of the user is revoked; this session moves " +
          "to a new refresh-token generation and its earlier access tokens stop working, so use " +
          "the tokens in the answer. 401 `invalid_credentials` when `currentPassword` is wrong " +
          "(counted in the per-user step-up limit: 429 `rate_limited` after 5) or was changed " +
          "by a concurrent change or reset.",
        security: stepUpSecurity,
        body: Type.Object(
          { currentPassword: Password, newPassword: Password },
          { additionalProperties: false },
        ),
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403, 409, 429) },
      },
    },
    async (request, reply) => {
      const auth = authOf(request);
      const tokens = await changePassword(svc, auth, request.body, clientInfo(request));
      return sendTokens(reply, svc.config, tokens);
    },
  );

  app.post(
    "/auth/refresh",
    {
      onRequest: noStore,
      schema: {
        tags,
        summary: "Rotate the refresh token and get a new pair",
        description:
          "The refresh token comes from the JSON body, `Authorization: Bearer`, or the `lk_refresh` cookie. " +
          "A token already rotated is answered with the same successor for the grace window; after it, " +
          "presenting it revokes the session (`refresh_token_reused`). A 401 for the lk_refresh " +
          "cookie's token also clears lk_refresh, lk_access and lk_step_up. A screen-locked " +
          "session is 423 `screen_locked` until POST /auth/unlock.",
        body: RefreshBody,
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403, 423) },
      },
    },
    async (request, reply) => {
      const credential = refreshCredential(request, svc.config, request.body ?? undefined);
      if (!credential) throw new AuthError("unauthenticated", "A refresh token is required");
      const tokens = await refresh(svc, credential.token, clientInfo(request)).catch(
        (err: unknown) => {
          // The session behind the cookie is over: its access and step-up cookies go too.
          if (refusedCookie(err, request, REFRESH_COOKIE, credential.token)) {
            clearTokenCookies(reply, svc.config);
          }
          throw err;
        },
      );
      return sendTokens(reply, svc.config, tokens);
    },
  );

  app.post(
    "/auth/logout",
    {
      onRequest: noStore, // as on every route that takes credentials
      schema: {
        tags,
        summary: "End this session (access or refresh token) and clear the cookies",
        description:
          "The session is named by the access token (Bearer or `lk_access`), or else by a refresh " +
          "token (body, Bearer or `lk_refresh`), so an expired or mangled access cookie next to a " +
          "good refresh cookie still logs out. 204 also for a session already ended. An API token " +
          "has no session: 403 `forbidden`, as on every route that does not accept one.",
        body: RefreshBody,
        response: { 204: Type.Null(), ...problemResponses(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const sessionId = await sessionToEnd(svc, request);
      if (!sessionId)
        throw new AuthError("unauthenticated", "An access or refresh token is required");
      await logout(svc, sessionId, clientInfo(request));
      clearTokenCookies(reply, svc.config);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/auth/logout/all",
    {
      onRequest: requireAuth(svc),
      schema: {
        tags,
        summary: "End every session of this user (log out of all devices)",
        security: authSecurity,
        response: { 204: Type.Null(), ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      const { user, session } = authOf(request);
      await logoutAll(svc, user.id, clientInfo(request), session.id);
      clearTokenCookies(reply, svc.config);
      return reply.code(204).send(null);
    },
  );
};

/**
 * The session a logout ends: named by a genuine access token, else by a refresh token
 * (body, Bearer or cookie), so an expired or mangled access cookie next to a good refresh
 * cookie still logs out. Whether the session is still live does not matter: logging out
 * twice, or out of a revoked session, still clears the cookies.
 */
async function sessionToEnd(
  svc: Services,
  request: Parameters<typeof refreshCredential>[0] & { body?: { refreshToken?: string } | null },
): Promise<string | undefined> {
  const body = request.body ?? undefined;
  const access = body?.refreshToken ? undefined : accessCredential(request, svc.config);
  if (access?.via === "bearer" && isApiToken(access.token)) {
    throw new AuthError("forbidden", "This route does not accept API tokens");
  }
  let refused: AuthError | undefined;
  if (access) {
    try {
      return (await verifiedClaims(svc, access.token)).sid;
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      refused = err;
    }
  }
  const refresh = refreshCredential(request, svc.config, body);
  const sessionId = refresh && sessionOfRefreshToken(svc, refresh.token);
  if (sessionId) return sessionId;
  if (refused) throw refused;
  if (refresh) throw new AuthError("invalid_token", "The refresh token is not valid");
  return undefined;
}
