import type { FastifyBaseLogger } from "fastify";
import type { Limiter } from "./cache/rate-limit.js";
import type { ReplayGuard } from "./cache/replay-guard.js";
import type { RevocationBus } from "./cache/revocation-bus.js";
import type { VerifiedTokenCache } from "./cache/verified-tokens.js";
import type { Config } from "./config/load.js";
import type { BackupCodeHasher } from "./domain/backup-codes.js";
import type { Clock } from "./domain/clock.js";
import type { PasswordHasher } from "./domain/password.js";
import type { RefreshTokenCodec } from "./domain/refresh-token.js";
import type { StateSealer } from "./domain/sealed-state.js";
import type { SecretBox } from "./domain/secret-box.js";
import type { ApiTokenState } from "./flows/api-token-state.js";
import type { AuditLog } from "./flows/audit-log.js";
import type { KeyService } from "./flows/keys.js";
import type { OAuthProviders } from "./flows/oauth/providers.js";
import type { SessionState } from "./flows/session-state.js";
import type { Mailer } from "./mail/mailer.js";
import type { Metrics } from "./ops/metrics.js";
import type { Store } from "./store/index.js";

/** Everything a flow may use, built once at start (see createServices). */
export interface Services {
  config: Config;
  clock: Clock;
  store: Store;
  auditLog: AuditLog;
  metrics: Metrics;
  hasher: PasswordHasher;
  keys: KeyService;
  refreshTokens: RefreshTokenCodec;
  /** Seals secrets kept at rest (TOTP secrets) under the master key. */
  box: SecretBox;
  backupCodes: BackupCodeHasher;
  /** HMAC key for the stand-in passkey IDs answered for unknown identifiers. */
  passkeyDecoyKey: Buffer;
  /** One-time use of TOTP steps and MFA tokens, shared by every node with Redis. */
  replay: ReplayGuard;
  verifiedTokens: VerifiedTokenCache;
  sessions: SessionState;
  apiTokens: ApiTokenState;
  bus: RevocationBus;
  /** Sends mail after the response (see Mailer). */
  mailer: Mailer;
  limits: {
    loginPerIp: Limiter;
    loginPerIdentifier: Limiter;
    publicPerIp: Limiter;
    /** Wrong second factors at sign-in, and wrong step-up proofs, each in its own count. */
    secondFactor: Limiter;
    /** Requests that send mail (resend, forgot, magic link), per IP: answered 429. */
    mailPerIp: Limiter;
    /** Mails per recipient address: beyond it, mail is dropped silently (the answer stays 202). */
    mailPerEmail: Limiter;
    /** Failed WebSocket authentications (GET /ws) per IP. */
    wsAuthPerIp: Limiter;
  };
  log: FastifyBaseLogger;
  oauth: {
    providers: OAuthProviders;
    /** Seals the start cookie (PKCE verifier, state, nonce, browser context). */
    sealer: StateSealer;
  };
}

/** Who is calling, as the HTTP layer saw it. */
export interface ClientInfo {
  ip: string;
  userAgent: string | null;
}
