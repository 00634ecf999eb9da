import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { regenerateBackupCodes } from "../../flows/backup-codes.js";
import { disableTotp } from "../../flows/mfa-disable.js";
import { enableTotp, startTotpSetup } from "../../flows/mfa-setup.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { authOf, requireAuth, requireStepUp } from "../guards.js";
import { authSecurity, problemResponses, stepUpSecurity, TotpCode } from "../schemas.js";

const BackupCodes = Type.Object({
  backupCodes: Type.Array(Type.String({ minLength: 8, maxLength: 8 }), {
    minItems: 10,
    maxItems: 10,
    description:
      "One-time recovery codes for POST /auth/login/mfa. Shown only now: store them safely",
  }),
});

export const mfaRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const tags = ["mfa"];
  const auth = requireAuth(svc);
  const stepUp = [auth, requireStepUp(svc)];

  app.post(
    "/mfa/totp/setup",
    {
      onRequest: auth,
      schema: {
        tags,
        summary: "Start TOTP setup: a new secret to scan (RFC 6238: SHA-1, 6 digits, 30 s)",
        description:
          "The secret is kept (sealed with the master key when one is set) but MFA stays off until " +
          "POST /mfa/totp/enable proves a code. Calling again replaces a pending secret. " +
          "409 `conflict` when MFA is already on.",
        security: authSecurity,
        response: {
          200: Type.Object({
            secret: Type.String({ description: "Base32, for manual entry" }),
            otpauthUrl: Type.String({ description: "otpauth://totp/… key URI" }),
            qrCodeDataUrl: Type.String({ description: "The key URI as a PNG data URL" }),
          }),
          ...problemResponses(401, 403, 409),
        },
      },
    },
    async (request) => startTotpSetup(svc, authOf(request).user),
  );

  app.post(
    "/mfa/totp/enable",
    {
      onRequest: auth,
      schema: {
        tags,
        summary: "Turn MFA on with a first code; answers 10 backup codes, shown once",
        description:
          "400 `invalid_code` for a wrong or reused code; 409 `conflict` when MFA is already on or " +
          "no setup is pending. Sign-ins then need a second factor.",
        security: authSecurity,
        body: Type.Object({ code: TotpCode }, { additionalProperties: false }),
        response: { 200: BackupCodes, ...problemResponses(400, 401, 403, 409) },
      },
    },
    async (request) => {
      const { user } = authOf(request);
      const backupCodes = await enableTotp(svc, user, request.body.code, clientInfo(request));
      return { backupCodes };
    },
  );

  app.post(
    "/mfa/totp/disable",
    {
      onRequest: stepUp,
      schema: {
        tags,
        summary: "Turn MFA off (needs step-up); the secret and backup codes are deleted",
        description: "Also drops a pending setup; 204 even when MFA was already off.",
        security: stepUpSecurity,
        response: { 204: Type.Null(), ...problemResponses(401, 403) },
      },
    },
    async (request, reply) => {
      await disableTotp(svc, authOf(request).user, clientInfo(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/mfa/backup-codes",
    {
      onRequest: stepUp,
      schema: {
        tags,
        summary: "A new set of 10 backup codes (needs step-up); every earlier code stops working",
        description: "409 `conflict` when MFA is off.",
        security: stepUpSecurity,
        response: { 200: BackupCodes, ...problemResponses(401, 403, 409) },
      },
    },
    async (request) => {
      const { user } = authOf(request);
      const backupCodes = await regenerateBackupCodes(svc, user, clientInfo(request));
      return { backupCodes };
    },
  );
};
