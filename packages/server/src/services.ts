import type { FastifyBaseLogger } from "fastify";
import type { Limiter } from "./cache/rate-limit.js";
import type { RevocationBus } from "./cache/revocation-bus.js";
import type { VerifiedTokenCache } from "./cache/verified-tokens.js";
import type { Config } from "./config/load.js";
import type { Clock } from "./domain/clock.js";
import type { PasswordHasher } from "./domain/password.js";
import type { RefreshTokenCodec } from "./domain/refresh-token.js";
import type { KeyService } from "./flows/keys.js";
import type { SessionState } from "./flows/session-state.js";
import type { Store } from "./store/index.js";

/** Everything a flow may use, built once at start (see createServices). */
export interface Services {
  config: Config;
  clock: Clock;
  store: Store;
  hasher: PasswordHasher;
  keys: KeyService;
  refreshTokens: RefreshTokenCodec;
  verifiedTokens: VerifiedTokenCache;
  sessions: SessionState;
  bus: RevocationBus;
  limits: {
    loginPerIp: Limiter;
    loginPerIdentifier: Limiter;
    publicPerIp: Limiter;
  };
  log: FastifyBaseLogger;
}

/** Who is calling, as the HTTP layer saw it. */
export interface ClientInfo {
  ip: string;
  userAgent: string | null;
}
