import { type Static, Type } from "@sinclair/typebox";
import { PG_QUERY_TIMEOUT_MS } from "../store/postgres.js";

/**
 * The longest delay Node's timers take (2^31 - 1 ms, ~24.8 days): a longer one is run after
 * 1 ms instead, with only a warning, so a week-long interval would fire a thousand times a second.
 */
const MAX_TIMER_MS = 2_147_483_647;
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000);
/**
 * Ten years: any longer lifetime is a mistake, and expiry times in milliseconds must stay
 * within PostgreSQL's bigint and exact JavaScript integers.
 */
const MAX_LIFETIME_SECONDS = 10 * 365 * 86_400;

/** A lifetime or window: how long something stays valid, compared against the clock. */
const Seconds = (def: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: MAX_LIFETIME_SECONDS, default: def, description });

/** A delay that becomes a timer. */
const TimerSeconds = (def: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: MAX_TIMER_SECONDS, default: def, description });

/** One federated sign-in provider (README.md "Sign in with OAuth / OpenID Connect"). */
const OAuthProvider = Type.Object(
  {
    id: Type.String({
      pattern: "^[a-z0-9][a-z0-9_-]{0,31}$",
      description: "In the routes (/auth/oauth/:id/…) and in `identities`; never change it",
    }),
    name: Type.String({ minLength: 1, maxLength: 100 }),
    type: Type.Union([Type.Literal("oidc"), Type.Literal("oauth2")]),
    clientId: Type.String({ minLength: 1 }),
    clientSecret: Type.Optional(Type.String({ minLength: 1 })),
    issuer: Type.Optional(
      Type.String({ pattern: "^https?://", description: "oidc: the issuer; found by discovery" }),
    ),
    authorizationUrl: Type.Optional(Type.String({ pattern: "^https?://" })),
    tokenUrl: Type.Optional(Type.String({ pattern: "^https?://" })),
    userInfoUrl: Type.Optional(
      Type.String({
        pattern: "^https?://",
        description: "oauth2: JSON with `id` (the subject), `login` and `email`",
      }),
    ),
    emailsUrl: Type.Optional(
      Type.String({
        pattern: "^https?://",
        description: "oauth2: JSON list of { email, primary, verified } (GitHub /user/emails)",
      }),
    ),
    scopes: Type.Optional(Type.Array(Type.String({ pattern: "^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$" }))),
    storeTokens: Type.Boolean({
      default: false,
      description: "Keep the provider's tokens, sealed with masterKey (required then)",
    }),
  },
  { additionalProperties: false },
);

/**
 * The whole configuration, one schema: defaults, validation and the documented
 * option list come from here. Keys are what a config file uses; `ENV` maps
 * environment variables onto them.
 */
export const ConfigSchema = Type.Object({
  mode: Type.Union([Type.Literal("development"), Type.Literal("production")], {
    default: "development",
  }),
  host: Type.String({ default: "127.0.0.1" }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  publicUrl: Type.Optional(
    Type.String({ pattern: "^https?://", description: "External base URL; the token issuer" }),
  ),
  dataDir: Type.String({ default: "./data" }),
  databaseUrl: Type.Optional(
    Type.String({ description: "postgres://… or sqlite:<file>; default sqlite in dataDir" }),
  ),
  databaseSchema: Type.Optional(
    Type.String({
      pattern: "^[a-z_][a-z0-9_]{0,62}$",
      description: "PostgreSQL only: keep Latchkey's tables in this schema (created if missing)",
    }),
  ),
  redisUrl: Type.Optional(Type.String()),
  redisKeyPrefix: Type.String({
    default: "latchkey",
    pattern: "^[A-Za-z0-9_.-]+$",
    description: "Namespace for keys and channels, so deployments can share one Redis",
  }),
  masterKey: Type.Optional(
    Type.String({ minLength: 32, description: "Encrypts private keys at rest (>= 32 chars)" }),
  ),
  jwtSecret: Type.Optional(
    Type.String({ minLength: 32, description: "Sign access tokens with HS256 instead of EdDSA" }),
  ),
  audience: Type.String({ default: "latchkey" }),
  logLevel: Type.Union(
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((l) => Type.Literal(l)),
    { default: "info" },
  ),
  bodyLimitBytes: Type.Integer({ minimum: 1024, default: 64 * 1024 }),
  trustProxy: Type.Array(Type.String(), { default: [] }),
  tokens: Type.Object(
    {
      accessTtlSeconds: Seconds(15 * 60, "Access-token lifetime"),
      refreshTtlSeconds: Seconds(7 * 86400, "Session lifetime"),
      rememberMeTtlSeconds: Seconds(90 * 86400, "Session lifetime with rememberMe"),
      maxSessionDurationSeconds: Type.Optional(
        Type.Integer({
          // The shortest sessionDurationMinutes a user may pick is 5: a lower ceiling
          // would refuse every value.
          minimum: 300,
          maximum: MAX_LIFETIME_SECONDS,
          description:
            "Longest session a user's sessionDurationMinutes may ask for (PATCH /users/me); default rememberMeTtlSeconds",
        }),
      ),
      refreshGraceSeconds: Type.Integer({ minimum: 0, maximum: 120, default: 10 }),
      delivery: Type.Union([Type.Literal("both"), Type.Literal("cookie"), Type.Literal("body")], {
        default: "both",
      }),
      clockToleranceSeconds: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
    },
    { default: {} },
  ),
  password: Type.Object(
    {
      minLength: Type.Integer({ minimum: 8, maximum: 128, default: 8 }),
      maxLength: Type.Integer({ minimum: 8, maximum: 1024, default: 128 }),
      argon2MemoryKiB: Type.Integer({ minimum: 8192, default: 19456 }),
      argon2Iterations: Type.Integer({ minimum: 1, default: 2 }),
      argon2Parallelism: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
      minStrengthScore: Type.Integer({
        minimum: 0,
        maximum: 4,
        default: 0,
        description:
          "Refuse new passwords whose zxcvbn-ts score (0-4) is below this; 0 turns the estimate off",
      }),
    },
    { default: {} },
  ),
  rateLimit: Type.Object(
    {
      loginFailuresPerIp: Type.Integer({ minimum: 1, default: 10 }),
      loginFailuresPerIdentifier: Type.Integer({ minimum: 1, default: 5 }),
      loginWindowSeconds: Seconds(15 * 60, "Window for failed-login counts"),
      // Failed logins have their own, tighter limits above; this one only has to stop one
      // address from creating accounts or sessions in bulk, not a NAT or a CI run.
      publicPerIp: Type.Integer({ minimum: 1, default: 600 }),
      publicWindowSeconds: Seconds(60, "Window for the per-IP limit on public endpoints"),
    },
    { default: {} },
  ),
  cookies: Type.Object(
    {
      secure: Type.Boolean({ default: true }),
      domain: Type.Optional(Type.String()),
    },
    { default: {} },
  ),
  allowedOrigins: Type.Array(Type.String(), { default: [] }),
  tiers: Type.Record(Type.String(), Type.Record(Type.String(), Type.Number()), {
    default: { guest: { apiTokens: 0 }, free: { apiTokens: 10 }, pro: { apiTokens: 100 } },
    description:
      "Limits per tier, returned in GET /users/me as `limits`. Latchkey enforces `apiTokens`; " +
      "any other key is your product's to enforce.",
  }),
  emailVerificationRequired: Type.Optional(
    Type.Boolean({
      description:
        "Refuse login (403 email_not_verified) until the email is verified; default on in production mode",
    }),
  ),
  mail: Type.Object(
    {
      transport: Type.Union([Type.Literal("outbox"), Type.Literal("smtp"), Type.Literal("http")], {
        default: "outbox",
        description:
          "outbox: .eml files under dataDir/outbox (development); smtp; http (a Mailjet-style API)",
      }),
      from: Type.String({ default: "Latchkey <no-reply@localhost>", minLength: 3 }),
      productName: Type.String({ default: "Latchkey", minLength: 1, maxLength: 100 }),
      smtp: Type.Object(
        {
          host: Type.String({ default: "127.0.0.1" }),
          port: Type.Integer({ minimum: 1, maximum: 65535, default: 587 }),
          secure: Type.Boolean({ default: false, description: "TLS from the start (port 465)" }),
          requireTls: Type.Boolean({
            default: true,
            description: "Refuse to send without STARTTLS",
          }),
          user: Type.Optional(Type.String()),
          password: Type.Optional(Type.String()),
        },
        { default: {} },
      ),
      http: Type.Object(
        {
          url: Type.String({ default: "https://api.mailjet.com/v3.1/send", pattern: "^https?://" }),
          apiKey: Type.Optional(Type.String()),
          apiSecret: Type.Optional(Type.String()),
        },
        { default: {} },
      ),
      maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 4 }),
      retryDelayMs: Type.Integer({
        minimum: 0,
        // Doubled up to maxAttempts - 1 (9) times, the last delay must still fit a timer.
        maximum: Math.floor(MAX_TIMER_MS / 2 ** 9),
        default: 2000,
        description: "Doubles per attempt",
      }),
      newSignInNotice: Type.Optional(
        Type.Boolean({
          description:
            "Mail a notice on a sign-in from a new browser/OS; default on unless the outbox is used",
        }),
      ),
      perEmail: Type.Integer({
        minimum: 1,
        default: 5,
        description: "Mails per address per window",
      }),
      perIp: Type.Optional(
        Type.Integer({
          minimum: 1,
          description:
            "Mail-sending requests per IP per window; default 100, or 10000 with the outbox (nothing leaves the machine)",
        }),
      ),
      windowSeconds: Seconds(3600, "Window of the mail limits"),
    },
    { default: {} },
  ),
  links: Type.Object(
    {
      verifyEmailTtlSeconds: Seconds(24 * 3600, "Email verification link lifetime"),
      resetPasswordTtlSeconds: Seconds(30 * 60, "Password reset link lifetime"),
      magicLinkTtlSeconds: Seconds(15 * 60, "Magic sign-in link lifetime"),
      basePath: Type.String({
        default: "/ui",
        pattern: "^/",
        description:
          "Pages the mailed links open, under publicUrl: <basePath>/verify-email, /reset-password, /magic-link",
      }),
    },
    { default: {} },
  ),
  oauth: Type.Object(
    {
      providers: Type.Array(OAuthProvider, {
        default: [],
        description: "Sign-in providers: OpenID Connect by issuer, or plain OAuth 2.0",
      }),
    },
    { default: {} },
  ),
  webauthn: Type.Object(
    {
      rpId: Type.Optional(
        Type.String({
          minLength: 1,
          description: "Relying-party ID: a domain; default the publicUrl host",
        }),
      ),
      rpName: Type.String({
        default: "Latchkey",
        minLength: 1,
        description: "Shown by authenticators",
      }),
      origins: Type.Array(Type.String(), {
        default: [],
        description: "Origins passkey ceremonies may come from; default the publicUrl origin",
      }),
    },
    { default: {} },
  ),
  sessionCacheMs: Type.Integer({ minimum: 0, maximum: 1000, default: 1000 }),
  purgeIntervalSeconds: TimerSeconds(3600, "How often expired sessions are purged"),
  postgresPool: Type.Object(
    {
      max: Type.Integer({
        minimum: 1,
        maximum: 1000,
        default: 10,
        description: "Connections per process (functions default to 2)",
      }),
      idleTimeoutMs: Type.Integer({
        minimum: 0,
        maximum: MAX_TIMER_MS,
        default: 10_000,
        description: "Close a connection idle this long; 0 keeps it (functions default to 5000)",
      }),
      queryTimeoutMs: Type.Integer({
        minimum: 100,
        maximum: MAX_TIMER_MS,
        default: PG_QUERY_TIMEOUT_MS,
        description:
          "A query unanswered this long fails the request with 503 service_unavailable " +
          "(migrations and the purge job are not bounded)",
      }),
    },
    { default: {} },
  ),
  operations: Type.Object(
    {
      auditRetentionDays: Type.Integer({
        minimum: 1,
        default: 90,
        description: "Audit events older than this are deleted by the purge job",
      }),
      metricsToken: Type.Optional(
        Type.String({
          minLength: 32,
          description:
            "Bearer token for GET /metrics; without one, /metrics answers loopback callers only",
        }),
      ),
      shutdownTimeoutSeconds: TimerSeconds(
        10,
        "On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway",
      ),
    },
    { default: {} },
  ),
  ws: Type.Object(
    {
      authTimeoutSeconds: Seconds(10, "GET /ws: an unauthenticated socket is closed after this"),
      heartbeatSeconds: Seconds(30, "GET /ws: ping and session re-check interval"),
      maxSocketsPerSession: Type.Integer({
        minimum: 1,
        default: 8,
        description: "GET /ws: open sockets per session on one node; a new one closes the oldest",
      }),
      maxSocketsPerUser: Type.Integer({
        minimum: 1,
        default: 32,
        description: "GET /ws: open sockets per user on one node; a new one closes the oldest",
      }),
      maxPendingPerIp: Type.Integer({
        minimum: 1,
        default: 32,
        description:
          "GET /ws: sockets not yet authenticated per IP (IPv6: per /64) on one node; one more closes 4429",
      }),
      maxMessageBytes: Type.Integer({
        minimum: 1024,
        maximum: 1024 * 1024,
        default: 8192,
        description: "GET /ws: a bigger client frame closes the socket (1009)",
      }),
      sweepIntervalMs: Type.Integer({
        minimum: 10,
        maximum: 5000,
        default: 1000,
        description:
          "GET /ws: how often socket deadlines (auth timeout, heartbeat, token push) are checked",
      }),
    },
    { default: {} },
  ),
  ui: Type.Object(
    {
      enabled: Type.Boolean({
        default: true,
        description: "Serve the hosted pages (login, account, …) under /ui",
      }),
      dir: Type.Optional(
        Type.String({ description: "The built pages; default packages/ui/dist of this install" }),
      ),
    },
    { default: {} },
  ),
});

export type ConfigInput = Static<typeof ConfigSchema>;

/** Environment variable -> config key (dotted path). Nothing else reads process.env. */
export const ENV: Record<string, string> = {
  LATCHKEY_MODE: "mode",
  LATCHKEY_HOST: "host",
  LATCHKEY_PORT: "port",
  LATCHKEY_PUBLIC_URL: "publicUrl",
  LATCHKEY_DATA_DIR: "dataDir",
  DATABASE_URL: "databaseUrl",
  LATCHKEY_DATABASE_SCHEMA: "databaseSchema",
  REDIS_URL: "redisUrl",
  LATCHKEY_REDIS_KEY_PREFIX: "redisKeyPrefix",
  LATCHKEY_MASTER_KEY: "masterKey",
  LATCHKEY_JWT_SECRET: "jwtSecret",
  LATCHKEY_AUDIENCE: "audience",
  LATCHKEY_LOG_LEVEL: "logLevel",
  LATCHKEY_BODY_LIMIT_BYTES: "bodyLimitBytes",
  LATCHKEY_TRUST_PROXY: "trustProxy",
  LATCHKEY_ACCESS_TTL_SECONDS: "tokens.accessTtlSeconds",
  LATCHKEY_REFRESH_TTL_SECONDS: "tokens.refreshTtlSeconds",
  LATCHKEY_REMEMBER_ME_TTL_SECONDS: "tokens.rememberMeTtlSeconds",
  LATCHKEY_MAX_SESSION_DURATION_SECONDS: "tokens.maxSessionDurationSeconds",
  LATCHKEY_REFRESH_GRACE_SECONDS: "tokens.refreshGraceSeconds",
  LATCHKEY_TOKEN_DELIVERY: "tokens.delivery",
  LATCHKEY_CLOCK_TOLERANCE_SECONDS: "tokens.clockToleranceSeconds",
  LATCHKEY_PASSWORD_MIN_LENGTH: "password.minLength",
  LATCHKEY_PASSWORD_MAX_LENGTH: "password.maxLength",
  LATCHKEY_ARGON2_MEMORY_KIB: "password.argon2MemoryKiB",
  LATCHKEY_ARGON2_ITERATIONS: "password.argon2Iterations",
  LATCHKEY_ARGON2_PARALLELISM: "password.argon2Parallelism",
  LATCHKEY_PASSWORD_MIN_STRENGTH_SCORE: "password.minStrengthScore",
  LATCHKEY_LOGIN_FAILURES_PER_IP: "rateLimit.loginFailuresPerIp",
  LATCHKEY_LOGIN_FAILURES_PER_IDENTIFIER: "rateLimit.loginFailuresPerIdentifier",
  LATCHKEY_LOGIN_WINDOW_SECONDS: "rateLimit.loginWindowSeconds",
  LATCHKEY_PUBLIC_RATE_LIMIT: "rateLimit.publicPerIp",
  LATCHKEY_PUBLIC_RATE_WINDOW_SECONDS: "rateLimit.publicWindowSeconds",
  LATCHKEY_COOKIE_SECURE: "cookies.secure",
  LATCHKEY_COOKIE_DOMAIN: "cookies.domain",
  LATCHKEY_ALLOWED_ORIGINS: "allowedOrigins",
  LATCHKEY_EMAIL_VERIFICATION_REQUIRED: "emailVerificationRequired",
  LATCHKEY_MAIL_TRANSPORT: "mail.transport",
  LATCHKEY_MAIL_FROM: "mail.from",
  LATCHKEY_PRODUCT_NAME: "mail.productName",
  LATCHKEY_SMTP_HOST: "mail.smtp.host",
  LATCHKEY_SMTP_PORT: "mail.smtp.port",
  LATCHKEY_SMTP_SECURE: "mail.smtp.secure",
  LATCHKEY_SMTP_REQUIRE_TLS: "mail.smtp.requireTls",
  LATCHKEY_SMTP_USER: "mail.smtp.user",
  LATCHKEY_SMTP_PASSWORD: "mail.smtp.password",
  LATCHKEY_MAIL_API_URL: "mail.http.url",
  LATCHKEY_MAIL_API_KEY: "mail.http.apiKey",
  LATCHKEY_MAIL_API_SECRET: "mail.http.apiSecret",
  LATCHKEY_MAIL_NEW_SIGN_IN_NOTICE: "mail.newSignInNotice",
  LATCHKEY_WEBAUTHN_RP_ID: "webauthn.rpId",
  LATCHKEY_WEBAUTHN_RP_NAME: "webauthn.rpName",
  LATCHKEY_WEBAUTHN_ORIGINS: "webauthn.origins",
  LATCHKEY_SESSION_CACHE_MS: "sessionCacheMs",
  LATCHKEY_PURGE_INTERVAL_SECONDS: "purgeIntervalSeconds",
  LATCHKEY_PG_POOL_MAX: "postgresPool.max",
  LATCHKEY_PG_IDLE_TIMEOUT_MS: "postgresPool.idleTimeoutMs",
  LATCHKEY_PG_QUERY_TIMEOUT_MS: "postgresPool.queryTimeoutMs",
  LATCHKEY_AUDIT_RETENTION_DAYS: "operations.auditRetentionDays",
  LATCHKEY_METRICS_TOKEN: "operations.metricsToken",
  LATCHKEY_SHUTDOWN_TIMEOUT_SECONDS: "operations.shutdownTimeoutSeconds",
  LATCHKEY_WS_AUTH_TIMEOUT_SECONDS: "ws.authTimeoutSeconds",
  LATCHKEY_WS_HEARTBEAT_SECONDS: "ws.heartbeatSeconds",
  LATCHKEY_WS_MAX_SOCKETS_PER_SESSION: "ws.maxSocketsPerSession",
  LATCHKEY_WS_MAX_SOCKETS_PER_USER: "ws.maxSocketsPerUser",
  LATCHKEY_WS_MAX_PENDING_PER_IP: "ws.maxPendingPerIp",
  LATCHKEY_WS_MAX_MESSAGE_BYTES: "ws.maxMessageBytes",
  LATCHKEY_WS_SWEEP_INTERVAL_MS: "ws.sweepIntervalMs",
  LATCHKEY_UI_ENABLED: "ui.enabled",
  LATCHKEY_UI_DIR: "ui.dir",
};
