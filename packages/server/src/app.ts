import { randomBytes, randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { ApiTokenCache } from "./cache/api-token-cache.js";
import { Limiter } from "./cache/rate-limit.js";
import { closeRedis, connectRedis, watch } from "./cache/redis.js";
import { MemoryReplayGuard, RedisReplayGuard } from "./cache/replay-guard.js";
import { MemoryBus, RedisBus, type RevocationBus } from "./cache/revocation-bus.js";
import { SessionCache } from "./cache/session-cache.js";
import { VerifiedTokenCache } from "./cache/verified-tokens.js";
import type { Config } from "./config/load.js";
import { assertProductionReady } from "./config/production.js";
import { describeUnknownVariables } from "./config/unknown-env.js";
import { BackupCodeHasher } from "./domain/backup-codes.js";
import { type Clock, systemClock } from "./domain/clock.js";
import { PasswordHasher } from "./domain/password.js";
import { RefreshTokenCodec } from "./domain/refresh-token.js";
import { StateSealer } from "./domain/sealed-state.js";
import { SecretBox } from "./domain/secret-box.js";
import { ApiTokenState } from "./flows/api-token-state.js";
import { AuditLog } from "./flows/audit-log.js";
import { KEY_CHECK_INTERVAL_MS, KeyService } from "./flows/keys.js";
import { OAuthProviders } from "./flows/oauth/providers.js";
import { purgeEnded } from "./flows/purge.js";
import { sealClearSecrets } from "./flows/seal-at-rest.js";
import { SessionState } from "./flows/session-state.js";
import { buildHttp } from "./http/app.js";
import { Mailer } from "./mail/mailer.js";
import { openTransport } from "./mail/open.js";
import type { MailTransport } from "./mail/transport.js";
import { Metrics } from "./ops/metrics.js";
import type { Services } from "./services.js";
import { assertMigrated, migrateToLatest, openDb } from "./store/db.js";
import { Store } from "./store/index.js";

export interface AppOptions {
  clock?: Clock;
  /**
   * Apply pending migrations first (the CLI's `serve` does). Functions pass false, run
   * `latchkey migrate` as a deploy step, and refuse to start on an older schema.
   */
  migrate?: boolean;
  logger?: pino.Logger;
  /** Send mail your own way instead of the configured transport. */
  mailTransport?: MailTransport;
  /** Serve the browsable API page at /docs (default true; functions skip it, /openapi.json stays). */
  docs?: boolean;
  /** Serve GET /ws (default true; functions skip it: their HTTP triggers cannot upgrade). */
  websocket?: boolean;
}

export interface Latchkey {
  http: FastifyInstance;
  svc: Services;
  close(): Promise<void>;
}

/**
 * Builds a complete server from a config: database, caches, keys and HTTP.
 * Nothing happens at import time; the CLI, tests and benchmarks all come here.
 */
export async function createApp(config: Config, options: AppOptions = {}): Promise<Latchkey> {
  const closers: Array<() => Promise<unknown>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close();
  };
  try {
    const { http, svc } = await assemble(config, options, closers);
    return { http, svc, close: closeAll };
  } catch (err) {
    // A failed start (bad master key, unreachable Redis) must not leave pools open.
    await closeAll().catch(() => {});
    throw err;
  }
}

/** Builds every part in order; each one that holds a resource registers its closer. */
async function assemble(
  config: Config,
  options: AppOptions,
  closers: Array<() => Promise<unknown>>,
): Promise<Pick<Latchkey, "http" | "svc">> {
  const log = options.logger ?? pino({ level: config.logLevel });
  // First: a typo may be why a check below refuses to start (LATCHKEY_MASTR_KEY).
  warnOfUnknownVariables(config, log);
  assertProductionReady(config);
  const clock = options.clock ?? systemClock;
  const db = await openDb(config.databaseUrl, {
    schema: config.databaseSchema,
    poolSize: config.postgresPool.max,
    idleTimeoutMs: config.postgresPool.idleTimeoutMs,
    queryTimeoutMs: config.postgresPool.queryTimeoutMs,
  });
  closers.push(() => db.close());
  const store = Store.of(db);
  if (options.migrate ?? true) await migrateToLatest(db);
  else await assertMigrated(db);
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, log) : undefined;
  if (redis) closers.push(() => closeRedis(redis));
  const bus: RevocationBus = redis
    ? await RedisBus.connect(
        redis,
        watch(redis.duplicate(), log),
        randomUUID(),
        config.redisKeyPrefix,
      )
    : new MemoryBus();
  closers.push(() => bus.close());

  const box = new SecretBox(config.masterKey);
  const sealed = await sealClearSecrets(store, box);
  if (sealed > 0)
    log.info({ sealed }, "sealed secrets stored in clear before the master key was set");
  // 256-bit keys made on first start and kept (sealed) in the database, so every node shares them.
  const serverKey = async (name: string) =>
    Buffer.from(
      box.open(
        await store.secrets.getOrCreate(
          name,
          () => box.seal(randomBytes(32).toString("base64url")),
          clock.now(),
        ),
      ),
      "base64url",
    );
  const [refreshKey, backupCodeKey, oauthStateKey, passkeyDecoyKey] = await Promise.all([
    serverKey("refresh_token_key"),
    serverKey("backup_code_key"),
    serverKey("oauth_state_key"),
    serverKey("passkey_decoy_key"),
  ]);
  const keys = new KeyService(
    store,
    box,
    bus,
    {
      jwtSecret: config.jwtSecret,
      accessTtlSeconds: config.tokens.accessTtlSeconds,
      clockToleranceSeconds: config.tokens.clockToleranceSeconds,
    },
    clock,
    (err) => log.error({ err }, "key reload failed"),
  );
  await keys.load();

  const rl = config.rateLimit;
  const ns = config.redisKeyPrefix;
  const auditLog = new AuditLog(store.audit, clock, (err) =>
    log.error({ err }, "audit write failed"),
  );
  // Closed after HTTP (closers run in reverse): the last requests' events get written.
  closers.push(() => auditLog.flush());
  const mailer = new Mailer(
    options.mailTransport ?? (await openTransport(config, log)),
    config.mail,
    log,
  );
  // Also after HTTP: mail the last requests queued still goes out.
  closers.push(() => mailer.close());
  const metrics = new Metrics(
    () => store.sessions.countActive(clock.now()),
    () => clock.now(),
  );
  const svc: Services = {
    config,
    clock,
    store,
    auditLog,
    metrics,
    hasher: new PasswordHasher(config.password, (op, ms) => metrics.observePasswordHash(op, ms)),
    keys,
    refreshTokens: new RefreshTokenCodec(refreshKey),
    box,
    backupCodes: new BackupCodeHasher(backupCodeKey),
    passkeyDecoyKey,
    replay: redis ? new RedisReplayGuard(redis, `${ns}:replay`) : new MemoryReplayGuard(),
    verifiedTokens: new VerifiedTokenCache(),
    sessions: new SessionState(store, new SessionCache(config.sessionCacheMs), bus, clock, (err) =>
      log.error({ err }, "background session write failed"),
    ),
    apiTokens: new ApiTokenState(store, new ApiTokenCache(), bus, clock, (err) =>
      log.error({ err }, "background API token write failed"),
    ),
    bus,
    mailer,
    limits: {
      loginPerIp: new Limiter(
        `${ns}:login-ip`,
        rl.loginFailuresPerIp,
        rl.loginWindowSeconds,
        redis,
        { perIp: true },
      ),
      loginPerIdentifier: new Limiter(
        `${ns}:login-id`,
        rl.loginFailuresPerIdentifier,
        rl.loginWindowSeconds,
        redis,
      ),
      publicPerIp: new Limiter(`${ns}:public-ip`, rl.publicPerIp, rl.publicWindowSeconds, redis, {
        perIp: true,
      }),
      secondFactor: new Limiter(
        `${ns}:second-factor`,
        rl.loginFailuresPerIdentifier,
        rl.loginWindowSeconds,
        redis,
      ),
      mailPerIp: new Limiter(`${ns}:mail-ip`, config.mail.perIp, config.mail.windowSeconds, redis, {
        perIp: true,
      }),
      mailPerEmail: new Limiter(
        `${ns}:mail-to`,
        config.mail.perEmail,
        config.mail.windowSeconds,
        redis,
      ),
      wsAuthPerIp: new Limiter(`${ns}:ws-auth-ip`, rl.publicPerIp, rl.publicWindowSeconds, redis, {
        perIp: true,
      }),
    },
    log,
    oauth: {
      providers: new OAuthProviders(config.oauth.providers, config.publicUrl),
      sealer: new StateSealer(oauthStateKey),
    },
  };

  const http = await buildHttp(
    svc,
    [
      { name: "database", check: () => store.ping() },
      ...(redis ? [{ name: "redis", check: async () => void (await redis.ping()) }] : []),
    ],
    { docs: options.docs ?? true, websocket: options.websocket ?? true },
  );
  closers.push(() => drain(http));

  const timers = [
    setInterval(
      // Its batches may wait for locks longer than a request may: no query timeout.
      () =>
        purgeEnded({ ...svc, store: Store.forLongWork(db) }).catch((err: unknown) =>
          log.error({ err }, "purge failed"),
        ),
      config.purgeIntervalSeconds * 1000,
    ),
    setInterval(() => keys.check(), KEY_CHECK_INTERVAL_MS),
  ];
  for (const t of timers) t.unref();
  closers.push(async () => {
    for (const t of timers) clearInterval(t);
  });
  return { http, svc };
}

function warnOfUnknownVariables(config: Config, log: pino.Logger): void {
  const unknown = config.unknownVariables;
  if (unknown.length === 0) return;
  log.warn({ unknownVariables: unknown.map((u) => u.name) }, describeUnknownVariables(unknown));
}

/** How often a closing server looks for sockets that have just gone idle. */
const DRAIN_SWEEP_MS = 50;

/**
 * Stops accepting and waits for the requests in flight. Node closes idle keep-alive
 * sockets once, when closing starts; a socket whose request finishes later would stay
 * open until its keep-alive timeout (72 s), so the idle ones are swept until done.
 */
async function drain(http: FastifyInstance): Promise<void> {
  const sweep = setInterval(() => http.server.closeIdleConnections(), DRAIN_SWEEP_MS);
  try {
    await http.close();
  } finally {
    clearInterval(sweep);
  }
}
