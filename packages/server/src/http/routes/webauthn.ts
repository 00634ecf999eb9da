import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { AuthError } from "../../domain/errors.js";
import { CREDENTIAL_ID_MAX_B64U } from "../../domain/webauthn.js";
import { mfaPasskeyOptions } from "../../flows/mfa-login.js";
import { stepUpPasskeyOptions } from "../../flows/step-up.js";
import { deletePasskey, listPasskeys, renamePasskey } from "../../flows/webauthn-credentials.js";
import { passkeyLogin, passkeyLoginOptions } from "../../flows/webauthn-login.js";
import { registerPasskey, registrationOptions } from "../../flows/webauthn-register.js";
import type { Services } from "../../services.js";
import { clearMfaCookie, MFA_COOKIE } from "../cookies.js";
import { clientInfo, mfaCredential, refusedCookie } from "../credentials.js";
import { authOf, publicRateLimit, requireAuth, requireStepUp } from "../guards.js";
import {
  authSecurity,
  MfaPendingResponse,
  mfaSecurity,
  problemResponses,
  stepUpSecurity,
  Text,
  TokenResponse,
} from "../schemas.js";
import { sendLoginResult } from "../token-reply.js";
import {
  ChallengeId,
  CreationOptions,
  ceremony,
  PasskeyAnswerBody,
  PasskeyName,
  PasskeyView,
  passkeyView,
  RegistrationResponse,
  RequestOptions,
} from "../webauthn-schemas.js";

const FAILED =
  "400 `webauthn_failed` when the signature, origin, RP ID, counter or challenge is wrong, " +
  "or the ceremony ran in a cross-origin frame";
const Params = Type.Object({ id: Text({ minLength: 1, maxLength: CREDENTIAL_ID_MAX_B64U }) });

/** Passkeys: registering and managing them ("acc"), and the ceremonies that use them. */
export const webauthnRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (
  app,
  { svc },
) => {
  const tags = ["passkeys"];
  const auth = requireAuth(svc);
  const limited = publicRateLimit(svc);
  const noStore = { "cache-control": "no-store" };

  app.post(
    "/webauthn/register/options",
    {
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Start registering a passkey: creation options and a challengeId",
        description:
          "Pass `options` to navigator.credentials.create (or startRegistration of " +
          "@simplewebauthn/browser). The challenge is bound to this session, works once and " +
          "for 5 minutes. User verification and a resident key are preferred, attestation is " +
          "`none`, the algorithms offered are EdDSA, ES256 and RS256, and the user's passkeys " +
          "are excluded. 403 for guests; 409 at 20 passkeys.",
        response: { 200: ceremony(CreationOptions), ...problemResponses(401, 403, 409) },
      },
    },
    async (request) => registrationOptions(svc, authOf(request)),
  );

  app.post(
    "/webauthn/register/verify",
    {
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Finish registering a passkey",
        description: `The attestation is verified (format \`none\` accepted) and the passkey stored. ${FAILED}, or when the credential's public key is invalid or of an algorithm not offered, or the attested credential ID is not the response's \`rawId\` (at most 1023 bytes); 409 \`conflict\` when this credential is already registered, or when the account already has 20 passkeys (a ceremony started below the cap cannot pass it).`,
        body: Type.Object(
          {
            challengeId: ChallengeId,
            response: RegistrationResponse,
            name: Type.Optional(PasskeyName),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ credential: PasskeyView }),
          ...problemResponses(400, 401, 403, 409),
        },
      },
    },
    async (request, reply) => {
      const passkey = await registerPasskey(
        svc,
        authOf(request),
        request.body,
        clientInfo(request),
      );
      return reply.code(201).send({ credential: passkeyView(passkey) });
    },
  );

  app.get(
    "/webauthn/credentials",
    {
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "The user's passkeys, oldest first",
        response: {
          200: Type.Object({ credentials: Type.Array(PasskeyView) }),
          ...problemResponses(401, 403),
        },
      },
    },
    async (request) => ({
      credentials: (await listPasskeys(svc, authOf(request))).map(passkeyView),
    }),
  );

  app.patch(
    "/webauthn/credentials/:id",
    {
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Rename a passkey",
        params: Params,
        body: Type.Object({ name: PasskeyName }, { additionalProperties: false }),
        response: {
          200: Type.Object({ credential: PasskeyView }),
          ...problemResponses(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const passkey = await renamePasskey(
        svc,
        authOf(request),
        id,
        request.body.name,
        clientInfo(request),
      );
      return { credential: passkeyView(passkey) };
    },
  );

  app.delete(
    "/webauthn/credentials/:id",
    {
      onRequest: [auth, requireStepUp(svc)],
      schema: {
        tags,
        security: stepUpSecurity,
        summary: "Delete a passkey (needs step-up)",
        description: "409 `conflict` for the last passkey of an account without a password.",
        params: Params,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await deletePasskey(svc, authOf(request), request.params.id, clientInfo(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/auth/webauthn/options",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Start a passwordless sign-in: request options and a challengeId",
        description:
          "Without `identifier`: no allowCredentials, so the browser offers discoverable " +
          "passkeys. With one: that account's passkeys; an unknown identifier gets a stable " +
          "stand-in credential ID, so the answer does not reveal whether the account exists; its " +
          "challenge takes only that account's passkeys (none for an unknown identifier). " +
          "The challenge is bound to nothing, works once and for 5 minutes.",
        body: Type.Union([
          Type.Object(
            { identifier: Type.Optional(Text({ minLength: 1, maxLength: 254 })) },
            { additionalProperties: false },
          ),
          Type.Null(),
        ]),
        response: { 200: ceremony(RequestOptions), ...problemResponses(400, 429) },
      },
    },
    async (request, reply) =>
      reply.headers(noStore).send(await passkeyLoginOptions(svc, request.body?.identifier)),
  );

  app.post(
    "/auth/webauthn/verify",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Finish a passwordless sign-in with a passkey",
        description:
          'Tokens as from POST /auth/login, with `amr` ["hwk","user"] when the authenticator ' +
          'verified the user (UV; this satisfies MFA) or ["hwk"] without. Without UV an account ' +
          "with MFA on answers `{ mfaRequired: true, mfaToken }` to finish with a TOTP or backup " +
          `code. Failed logins count as for passwords (per IP and per account, then 429). ${FAILED}; ` +
          "403 `account_disabled` or `ip_not_allowed`; 401 `session_revoked` when the account's " +
          "sessions were ended while signing in.",
        body: Type.Object(
          {
            challengeId: ChallengeId,
            response: PasskeyAnswerBody.properties.response,
            rememberMe: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Union([Type.Ref(TokenResponse), MfaPendingResponse]),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const result = await passkeyLogin(svc, request.body, clientInfo(request));
      return sendLoginResult(reply, svc.config, result);
    },
  );

  app.post(
    "/auth/login/mfa/webauthn/options",
    {
      preHandler: limited,
      schema: {
        tags,
        security: mfaSecurity,
        summary: "Request options for a passkey as the second factor",
        description:
          "Finish with POST /auth/login/mfa `{ webauthn: { challengeId, response } }`. The " +
          "challenge is bound to this MFA token. After a passkey sign-in without user " +
          "verification `userVerification` is `required`: only a user-verifying passkey adds " +
          "a factor then. 409 `conflict` when the account has no passkey; 401 `invalid_token` " +
          "for a token the sign-in can no longer finish with (the account's sessions ended or " +
          "MFA turned off since), `token_expired`; a 401 for the lk_mfa cookie's token clears " +
          "the cookie.",
        response: { 200: ceremony(RequestOptions), ...problemResponses(401, 409, 429) },
      },
    },
    async (request, reply) => {
      const mfaToken = mfaCredential(request, svc.config);
      if (!mfaToken) throw new AuthError("unauthenticated", "An MFA token is required");
      const options = await mfaPasskeyOptions(svc, mfaToken).catch((err: unknown) => {
        if (refusedCookie(err, request, MFA_COOKIE, mfaToken)) clearMfaCookie(reply, svc.config);
        throw err;
      });
      return reply.headers(noStore).send(options);
    },
  );

  app.post(
    "/auth/step-up/webauthn/options",
    {
      onRequest: auth,
      schema: {
        tags,
        security: authSecurity,
        summary: "Request options for a passkey step-up",
        description:
          "Finish with POST /auth/step-up `{ webauthn: { challengeId, response } }`. The " +
          "challenge is bound to this session. 409 `conflict` when the account has no passkey.",
        response: { 200: ceremony(RequestOptions), ...problemResponses(401, 403, 409) },
      },
    },
    async (request) => stepUpPasskeyOptions(svc, authOf(request)),
  );
};
