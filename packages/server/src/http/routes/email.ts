import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { resendVerification, verifyEmail } from "../../flows/email-verification.js";
import { requestMagicLink, verifyMagicLink } from "../../flows/magic-link.js";
import { forgotPassword, resetPassword } from "../../flows/password-reset.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { publicRateLimit } from "../guards.js";
import {
  Email,
  MailAccepted,
  MfaPendingResponse,
  Password,
  problemResponses,
  TokenResponse,
} from "../schemas.js";
import { sendLoginResult } from "../token-reply.js";

const tags = ["email"];
const LinkToken = Type.String({
  minLength: 1,
  maxLength: 512,
  description: "From the mailed link's `token` query",
});
const EmailBody = Type.Object({ email: Email }, { additionalProperties: false });
const TokenBody = Type.Object({ token: LinkToken }, { additionalProperties: false });
const ACCEPTED = {
  status: "accepted" as const,
  detail: "If the address belongs to an account, a message is on its way.",
};
const UNIFORM =
  "Always 202 with the same body, whether or not the address has an account; the lookup and " +
  "the mail happen after the answer, so its timing says nothing either. Limits: per IP " +
  "(429 `rate_limited`) and per address (further mail is dropped silently).";

/** Mailed links: email verification, password reset and magic sign-in. */
export const emailRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const limited = publicRateLimit(svc);
  const accepted = { 202: MailAccepted, ...problemResponses(400, 429) };

  app.post(
    "/auth/email/verify",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Mark the email verified with the token from the mailed link",
        description:
          "Single use; the link expires (default 24 h) and stops working when the account's " +
          "email changes. 400 `invalid_or_expired_token` otherwise.",
        body: TokenBody,
        response: {
          200: Type.Object({ emailVerified: Type.Literal(true), email: Type.String() }),
          ...problemResponses(400, 429),
        },
      },
    },
    async (request) => {
      const user = await verifyEmail(svc, request.body.token, clientInfo(request));
      return { emailVerified: true as const, email: user.email as string };
    },
  );

  // The three "mail me a link" requests: one shape, one uniform answer.
  const mailRequests = [
    ["/auth/email/resend", "Mail a new verification link", "", resendVerification],
    [
      "/auth/password/forgot",
      "Mail a password reset link",
      " The link works once and expires (default 30 min).",
      forgotPassword,
    ],
    [
      "/auth/magic-link",
      "Mail a one-time sign-in link",
      " Only existing, enabled accounts get a link (no sign-up by link); it works once and expires (default 15 min).",
      requestMagicLink,
    ],
  ] as const;
  for (const [url, summary, more, send] of mailRequests) {
    app.post(
      url,
      {
        preHandler: limited,
        schema: { tags, summary, description: UNIFORM + more, body: EmailBody, response: accepted },
      },
      async (request, reply) => {
        await send(svc, request.body.email, clientInfo(request));
        return reply.code(202).send(ACCEPTED);
      },
    );
  }

  app.post(
    "/auth/password/reset",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Set a new password with the token from the reset link",
        description:
          "204. Every session and API token of the account ends, every other mailed link is " +
          "void, the address counts as verified, and a notice is mailed; on an account no " +
          "address of which ever was, its passkeys and linked identities end too. A password " +
          "the rules refuse (400 " +
          "`validation_failed`) leaves the link usable; a used, expired or unknown token is 400 " +
          "`invalid_or_expired_token`. A password change also voids reset links. A link " +
          "mailed before the account was disabled is 403 `account_disabled`.",
        body: Type.Object(
          { token: LinkToken, newPassword: Password },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...problemResponses(400, 403, 429) },
      },
    },
    async (request, reply) => {
      await resetPassword(svc, request.body, clientInfo(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/auth/magic-link/verify",
    {
      preHandler: limited,
      schema: {
        tags,
        summary: "Sign in with the token from the mailed link",
        description:
          'Tokens like a password login (`amr` `["email"]`), or MFA pending when the account has ' +
          "MFA on. The address becomes verified; on an account no address of which ever was, " +
          "the password, passkeys, API tokens, linked identities and sessions set up before end " +
          "(pre-registration by someone else). 400 `invalid_or_expired_token` for a used, " +
          "expired or unknown token; 403 `account_disabled` / `ip_not_allowed` as for login " +
          "(the link stays unused); 401 `session_revoked` when the account's sessions were " +
          "ended while signing in.",
        body: TokenBody,
        response: {
          200: Type.Union([Type.Ref(TokenResponse), MfaPendingResponse]),
          ...problemResponses(400, 401, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const result = await verifyMagicLink(svc, request.body.token, clientInfo(request));
      return sendLoginResult(reply, svc.config, result);
    },
  );
};
