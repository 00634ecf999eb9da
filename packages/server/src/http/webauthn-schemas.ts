import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import { Type } from "@sinclair/typebox";
import { CREDENTIAL_ID_MAX_B64U, PASSKEY_NAME_MAX, type Passkey } from "../domain/webauthn.js";
import { Name, Nullable } from "./schemas.js";

/**
 * The standard JSON forms of WebAuthn L3 (§5.1.8, §5.1.9, §5.5.4, §5.10.x), as
 * @simplewebauthn/browser sends and expects them. Members the browser may add are let
 * through (objects stay open); the ones the server reads are checked here.
 */
const B64u = (maxLength: number, description?: string) =>
  Type.String({ pattern: "^[A-Za-z0-9_-]+$", minLength: 1, maxLength, description });
const Open = (description?: string) =>
  Type.Object({}, { additionalProperties: true, ...(description ? { description } : {}) });
const CredentialDescriptor = Type.Object(
  {
    id: B64u(CREDENTIAL_ID_MAX_B64U, "Credential ID"),
    type: Type.Literal("public-key"),
    transports: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
);
const Transports = Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 });

export const CreationOptions = Type.Unsafe<PublicKeyCredentialCreationOptionsJSON>(
  Type.Object(
    {
      rp: Type.Object({ id: Type.String(), name: Type.String() }),
      user: Type.Object({
        id: Type.String({ description: "User handle, base64url: the user id, never PII" }),
        name: Type.String(),
        displayName: Type.String(),
      }),
      challenge: Type.String({ description: "base64url, 32 random bytes" }),
      pubKeyCredParams: Type.Array(Type.Object({ type: Type.String(), alg: Type.Integer() })),
      timeout: Type.Optional(Type.Integer({ description: "Milliseconds: 300000" })),
      excludeCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
      authenticatorSelection: Type.Optional(Open("residentKey and userVerification preferred")),
      attestation: Type.Optional(Type.String({ description: "Always `none`" })),
      hints: Type.Optional(Type.Array(Type.String())),
      extensions: Type.Optional(Open()),
    },
    { additionalProperties: true, description: "PublicKeyCredentialCreationOptionsJSON" },
  ),
);

export const RequestOptions = Type.Unsafe<PublicKeyCredentialRequestOptionsJSON>(
  Type.Object(
    {
      challenge: Type.String({ description: "base64url, 32 random bytes" }),
      rpId: Type.Optional(Type.String()),
      timeout: Type.Optional(Type.Integer({ description: "Milliseconds: 300000" })),
      allowCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
      userVerification: Type.Optional(
        Type.String({
          description: "`preferred`; `required` in the MFA step after a passkey sign-in without UV",
        }),
      ),
      hints: Type.Optional(Type.Array(Type.String())),
      extensions: Type.Optional(Open()),
    },
    { additionalProperties: true, description: "PublicKeyCredentialRequestOptionsJSON" },
  ),
);

export const RegistrationResponse = Type.Unsafe<RegistrationResponseJSON>(
  Type.Object(
    {
      id: B64u(CREDENTIAL_ID_MAX_B64U),
      rawId: B64u(CREDENTIAL_ID_MAX_B64U),
      type: Type.Literal("public-key"),
      response: Type.Object(
        {
          clientDataJSON: B64u(4096),
          attestationObject: B64u(32768),
          transports: Type.Optional(Transports),
        },
        { additionalProperties: true },
      ),
      clientExtensionResults: Open(),
      authenticatorAttachment: Type.Optional(Nullable(Type.String())),
    },
    { additionalProperties: true, description: "RegistrationResponseJSON" },
  ),
);

export const AuthenticationResponse = Type.Unsafe<AuthenticationResponseJSON>(
  Type.Object(
    {
      id: B64u(CREDENTIAL_ID_MAX_B64U),
      rawId: B64u(CREDENTIAL_ID_MAX_B64U),
      type: Type.Literal("public-key"),
      response: Type.Object(
        {
          clientDataJSON: B64u(4096),
          authenticatorData: B64u(4096),
          signature: B64u(1024),
          // Null from some native toJSON() implementations means "absent".
          userHandle: Type.Optional(
            Nullable(Type.String({ pattern: "^[A-Za-z0-9_-]*$", maxLength: 128 })),
          ),
        },
        { additionalProperties: true },
      ),
      clientExtensionResults: Open(),
      authenticatorAttachment: Type.Optional(Nullable(Type.String())),
    },
    {
      additionalProperties: true,
      description:
        "AuthenticationResponseJSON. A body not of this shape is 400 `validation_failed` (with " +
        "the path); a well-formed one that fails verification is 400 `webauthn_failed`",
    },
  ),
);

export const ChallengeId = Type.String({
  minLength: 1,
  maxLength: 64,
  description: "From the options call; works once, for 5 minutes",
});

/** `{ challengeId, response }`: a finished authentication ceremony. */
export const PasskeyAnswerBody = Type.Object(
  { challengeId: ChallengeId, response: AuthenticationResponse },
  { additionalProperties: false },
);

export const ceremony = <T extends typeof CreationOptions | typeof RequestOptions>(options: T) =>
  Type.Object({ options, challengeId: ChallengeId });

/** Something other than white space, and `Text` (no U+0000 or unpaired surrogate). */
export const PasskeyName = Name(PASSKEY_NAME_MAX);

export const PasskeyView = Type.Object({
  id: Type.String({ description: "Credential ID, base64url" }),
  name: Type.String(),
  createdAt: Type.String({ format: "date-time" }),
  lastUsedAt: Nullable(Type.String({ format: "date-time" })),
  backedUp: Type.Boolean({ description: "The authenticator reports the key backed up (synced)" }),
  deviceType: Type.Union([Type.Literal("singleDevice"), Type.Literal("multiDevice")], {
    description: "multiDevice: a synced passkey; singleDevice: bound to one authenticator",
  }),
});

export const passkeyView = (p: Passkey) => ({
  id: p.id,
  name: p.name,
  createdAt: new Date(p.createdAt).toISOString(),
  lastUsedAt: p.lastUsedAt === null ? null : new Date(p.lastUsedAt).toISOString(),
  backedUp: p.backedUp,
  deviceType: p.deviceType,
});
