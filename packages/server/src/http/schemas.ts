import {
  type Static,
  type StringOptions,
  type TInteger,
  type TString,
  Type,
} from "@sinclair/typebox";

/** Shared shapes of the contract (../shared/API.md "Shapes"). Routes keep their own bodies. */

/**
 * `type: [T, "null"]` (JSON Schema 2020-12, OpenAPI 3.1) rather than `anyOf`: the
 * response serializer handles a type list directly, while every `anyOf` makes it
 * validate the value to pick a branch (a tenth of /auth/refresh's time, measured).
 */
export const Nullable = <T extends TString | TInteger>(schema: T) =>
  Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, "null"] });

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { $id: "Problem", description: "RFC 9457 problem details with a stable `code`" },
);

export const UserView = Type.Object(
  {
    id: Type.String(),
    email: Nullable(Type.String()),
    emailVerified: Type.Boolean(),
    username: Nullable(Type.String()),
    role: Type.String(),
    tier: Type.String(),
    subscriptionStatus: Type.String(),
    guest: Type.Boolean(),
    mfaEnabled: Type.Boolean(),
    identities: Type.Array(
      Type.Object({
        provider: Type.String({ description: "The provider id from the configuration" }),
        subject: Type.String({ description: "The provider's stable id for the account" }),
        email: Nullable(Type.String()),
        linkedAt: Type.String({ format: "date-time" }),
      }),
      { description: "Linked sign-in providers (OAuth 2.0 / OpenID Connect)" },
    ),
    allowedIps: Type.Array(Type.String()),
    sessionDurationMinutes: Nullable(Type.Integer()),
    singleSession: Type.Boolean(),
    screenLockMinutes: Nullable(Type.Integer()),
    limits: Type.Record(Type.String(), Type.Number()),
    createdAt: Type.String({ format: "date-time" }),
  },
  { $id: "User" },
);
export type UserView = Static<typeof UserView>;

export const TokenResponse = Type.Object(
  {
    user: Type.Ref(UserView),
    accessToken: Type.Optional(Type.String({ description: "Omitted in cookie delivery mode" })),
    refreshToken: Type.Optional(Type.String({ description: "Omitted in cookie delivery mode" })),
    expiresIn: Type.Integer({ description: "Seconds the access token lives" }),
    sessionExpiresIn: Type.Integer({ description: "Seconds until the session's absolute end" }),
    tokenType: Type.Literal("Bearer"),
  },
  { $id: "TokenResponse" },
);

/**
 * No U+0000 and no unpaired surrogate anywhere: what `Text` requires. Ajv compiles patterns
 * with the `u` flag, so the surrogate range matches only a half without its pair (an emoji
 * is one code point and passes).
 */
export const TEXT_PATTERN = "^[^\\u0000\\uD800-\\uDFFF]*$";

/**
 * Text the server stores or looks up as it came (names, identifiers, ids in paths, search
 * terms). PostgreSQL's `text` cannot hold U+0000, so a NUL failed the query there (500)
 * while SQLite took it; it is refused here instead, 400 on both databases. An unpaired
 * surrogate (JSON's `"\ud800"`) is not Unicode text either: each database stored
 * something other than what was sent (SQLite its WTF-8 bytes, PostgreSQL U+FFFD), so it is
 * refused too.
 */
export const Text = (options: Omit<StringOptions, "pattern"> = {}) =>
  Type.String({ ...options, pattern: TEXT_PATTERN });

/** A label the user picks (an API token's, a passkey's): something visible, and `Text`. */
export const Name = (maxLength: number) =>
  Type.String({ minLength: 1, maxLength, pattern: "\\S", allOf: [{ pattern: TEXT_PATTERN }] });

export const Email = Type.String({ format: "email", maxLength: 254 });
const USERNAME_RULE = { minLength: 2, maxLength: 50, pattern: "^[A-Za-z0-9._-]+$" } as const;
export const Username = Type.String({
  ...USERNAME_RULE,
  description: "2-50 letters, digits, `.`, `_` or `-`; unique, case-insensitive",
});
/** A guest's name: the same rule as a username, but shown only, never reserved. */
export const GuestName = Type.String({
  ...USERNAME_RULE,
  description: "2-50 letters, digits, `.`, `_` or `-`; shown only, never reserved",
});
/** Length rules are checked after NFKC normalisation, in code points (see PasswordHasher). */
export const Password = Type.String({ minLength: 1, maxLength: 4096 });

// Loose bounds on purpose: a code of the wrong shape is a wrong code (400 invalid_code,
// counted as a failed attempt), not a schema error.
export const SecondFactorCode = Type.String({
  minLength: 1,
  maxLength: 64,
  description:
    "A 6-digit TOTP code, or an 8-character backup code (case, spaces and dashes ignored)",
});

export const TotpCode = Type.String({
  minLength: 1,
  maxLength: 64,
  description: "The 6-digit code the authenticator app shows now (spaces ignored)",
});

/** Proof of presence for step-up and unlock: exactly one of the password or a TOTP code. */
export const ReauthBody = Type.Object(
  { password: Type.Optional(Password), code: Type.Optional(SecondFactorCode) },
  { additionalProperties: false, minProperties: 1, maxProperties: 1 },
);

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, Type.Ref(Problem)]));

/** OpenAPI security for "acc" routes: a Bearer access token or the lk_access cookie. */
export const authSecurity: Array<Record<string, string[]>> = [{ bearer: [] }, { cookie: [] }];

/** OpenAPI security for "acc" routes that also take an API token with `scope`. */
export const scopedSecurity = (scope: string): Array<Record<string, string[]>> => [
  ...authSecurity,
  { apiToken: [scope] },
];

export const MfaPendingResponse = Type.Object(
  {
    mfaRequired: Type.Literal(true),
    mfaToken: Type.Optional(
      Type.String({
        description:
          "Send it as `X-MFA-Token` to POST /auth/login/mfa (also set as the lk_mfa cookie); omitted in cookie delivery mode",
      }),
    ),
    expiresIn: Type.Integer({ description: "Seconds the MFA token lives" }),
  },
  { description: "The password was right and the account has MFA: no session yet" },
);

/** OpenAPI security for "MFA pending": the X-MFA-Token header or the lk_mfa cookie. */
export const mfaSecurity: Array<Record<string, string[]>> = [{ mfaToken: [] }, { mfaCookie: [] }];

/** OpenAPI security for "acc + su" routes: an access token and a step-up token (header or cookie). */
export const stepUpSecurity: Array<Record<string, string[]>> = authSecurity.flatMap((access) =>
  ["stepUpToken", "stepUpCookie"].map((stepUp) => ({ ...access, [stepUp]: [] })),
);

export const VerificationRequired = Type.Object({
  verificationRequired: Type.Literal(true, {
    description: "Follow the link mailed to the address, then sign in",
  }),
});

/** The one answer of every endpoint that may send mail to an address it was given. */
export const MailAccepted = Type.Object({
  status: Type.Literal("accepted"),
  detail: Type.String(),
});
