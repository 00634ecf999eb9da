#!/usr/bin/env -S node --max-semi-space-size=8 --no-parallel-scavenge
// --max-semi-space-size=8 (MiB): the young generation grows to 16 MiB per semi-space
// during start-up and keeps its pages; 8 holds idle RSS near 110 MB with no measured
// throughput loss. --no-parallel-scavenge: a young-generation collection of a heap this
// small is over sooner than waking V8's helper threads for it costs; GET /users/me serves
// ~9 % more requests without them (bench/RESULTS.md, 2026-12-06, sixth session). `npm
// start` passes the same flags.
import type { AddressInfo } from "node:net";
import { Value } from "@sinclair/typebox/value";
import { Command } from "commander";
import { createApp, type Latchkey } from "./app.js";
import { type Config, ConfigError, httpUrl, loadConfig } from "./config/load.js";
import { describeUnknownVariables } from "./config/unknown-env.js";
import { systemClock } from "./domain/clock.js";
import { uuidv7 } from "./domain/ids.js";
import { PasswordHasher } from "./domain/password.js";
import { assertPasswordAcceptable } from "./domain/password-policy.js";
import { EMAIL_ADDRESS, normalizeEmail, type User } from "./domain/user.js";
import { audit } from "./flows/audit.js";
import { purgeEndedSessions } from "./flows/purge.js";
import { Username } from "./http/schemas.js";
import { isUniqueViolation, migrateToLatest, openDb } from "./store/db.js";
import { Store } from "./store/index.js";

const program = new Command("latchkey").description("Latchkey authentication server");

program
  .command("serve", { isDefault: true })
  .description("Start the HTTP server (applies pending migrations first)")
  .action(async () => {
    const config = loadConfig();
    const started = performance.now();
    const latchkey = await createApp(config);
    await latchkey.http.listen({ host: config.host, port: config.port });
    const { port } = latchkey.http.server.address() as AddressInfo;
    const url = httpUrl(config.host, port);
    latchkey.svc.log.info(
      {
        url,
        database: describeDb(config),
        threadPoolSize: threadPoolSize(),
        readyMs: Math.round(performance.now() - started),
      },
      `Latchkey is ready at ${url} (API docs at ${url}/docs)`,
    );
    onShutdownSignal(latchkey, config.operations.shutdownTimeoutSeconds);
  });

program
  .command("migrate")
  .description("Apply pending database migrations and exit")
  .action(async () => {
    const config = commandConfig();
    const db = await openDb(config.databaseUrl, dbOptions(config));
    try {
      console.log(`Migrating ${describeDb(config)}`);
      await migrateToLatest(db, (name) => console.log(`  applied ${name}`));
      console.log("Database is up to date");
    } finally {
      await db.close();
    }
  });

program
  .command("keys")
  .description("Signing keys")
  .command("rotate")
  .description("Create a new signing key; older keys stay published until their tokens expire")
  .action(async () => {
    const latchkey = await createApp(loadConfig());
    try {
      const { kid, retired } = await latchkey.svc.keys.rotate();
      audit(latchkey.svc, { type: "keys_rotated", detail: { kid, retired, by: "cli" } });
      console.log(`New signing key ${kid}; ${retired} older key(s) retired and still published`);
    } finally {
      await latchkey.close();
    }
  });

program
  .command("admin")
  .description("Administrators")
  .command("create")
  .description("Create an admin user")
  .requiredOption("--username <name>")
  .option("--email <email>")
  .requiredOption("--password-env <var>", "read the password from this environment variable")
  .action(async (opts: { username: string; email?: string; passwordEnv: string }) => {
    const config = commandConfig(opts.passwordEnv);
    const password = process.env[opts.passwordEnv];
    if (!password) throw new ConfigError(`${opts.passwordEnv} is not set`);
    // The rules POST /auth/setup and /auth/register hold these to; the CLI took anything.
    if (!Value.Check(Username, opts.username)) {
      throw new ConfigError(`--username: ${Username.description}`);
    }
    if (opts.email !== undefined && !EMAIL_ADDRESS.test(opts.email.trim())) {
      throw new ConfigError(`--email: ${opts.email} is not an email address`);
    }
    const hasher = new PasswordHasher(config.password);
    await assertPasswordAcceptable(password, opts, config.password).catch((err: unknown) => {
      throw new ConfigError(`${opts.passwordEnv}: ${(err as Error).message}`);
    });
    const db = await openDb(config.databaseUrl, dbOptions(config));
    try {
      await migrateToLatest(db);
      const now = Date.now();
      const user = await Store.of(db)
        .users.create(
          {
            id: uuidv7(now),
            email: opts.email ? normalizeEmail(opts.email) : null,
            username: opts.username,
            passwordHash: await hasher.hash(password),
            role: "admin",
          },
          now,
        )
        .catch((err: unknown) => {
          if (!isUniqueViolation(err)) throw err;
          throw new ConfigError("An account with this username or email already exists");
        });
      console.log(`Created admin ${user.username} (${user.id})`);
    } finally {
      await db.close();
    }
  });

program
  .command("users")
  .description("Accounts")
  .command("list")
  .description("List users, newest first (tab-separated: id, email, username, role, tier, state)")
  .option("--search <text>", "case-insensitive substring of the email or username")
  .option("--limit <n>", "at most this many; 0 lists all", "50")
  .action(async (opts: { search?: string; limit: string }) => {
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 0)
      throw new ConfigError("--limit must be an integer >= 0");
    await withStore(async (store) => {
      const progress = new Progress("listed");
      let before: string | undefined;
      let listed = 0;
      for (;;) {
        const size = limit === 0 ? CLI_PAGE : Math.min(CLI_PAGE, limit - listed);
        if (size === 0) break;
        const page = await store.users.list({ search: opts.search, before, limit: size });
        for (const u of page) console.log(userLine(u));
        listed += page.length;
        progress.report(listed);
        if (page.length < size) break;
        before = page[page.length - 1]?.id;
      }
      progress.done(listed);
    });
  });

program
  .command("sessions")
  .description("Sessions")
  .command("purge")
  .description("Delete sessions that ended (expired or revoked) more than a day ago, in batches")
  .action(async () => {
    const config = commandConfig();
    // Batches may wait for locks longer than a request may: no query timeout.
    await withStore(
      async (store) => {
        const progress = new Progress("deleted");
        const deleted = await purgeEndedSessions({ store, clock: systemClock, config }, (n) =>
          progress.report(n),
        );
        progress.done(deleted);
      },
      config,
      Store.forLongWork,
    );
  });

/**
 * The configuration of a command that works on the database without a server (and so
 * without its log): unknown LATCHKEY_* variables are warned of on stderr, since a typo in
 * one (LATCHKEY_DATABSE_SCHEMA) would have it work on other tables than meant. Not one the
 * command itself was told to read (`--password-env LATCHKEY_ADMIN_PASSWORD`).
 */
function commandConfig(readByCommand?: string): Config {
  const config = loadConfig();
  const unknown = config.unknownVariables.filter(({ name }) => name !== readByCommand);
  if (unknown.length > 0) {
    console.error(`latchkey: warning: ${describeUnknownVariables(unknown)}`);
  }
  return config;
}

/** Rows per query when the CLI walks a table. */
const CLI_PAGE = 1000;

function userLine(u: User): string {
  const state = [
    u.disabled ? "disabled" : "enabled",
    u.guest ? "guest" : "",
    u.mfaEnabled ? "mfa" : "",
  ];
  return [
    u.id,
    u.email ?? "-",
    u.username ?? "-",
    u.role,
    u.tier,
    state.filter(Boolean).join(","),
  ].join("\t");
}

/** Progress of long work on stderr (stdout stays clean for pipes), at most once a second. */
class Progress {
  private last = performance.now();
  private readonly started = this.last;

  constructor(private readonly verb: string) {}

  report(count: number): void {
    const now = performance.now();
    if (now - this.last < 1000) return;
    this.last = now;
    const rate = Math.round(count / ((now - this.started) / 1000));
    process.stderr.write(
      `  ${this.verb} ${count.toLocaleString("en")} (${rate.toLocaleString("en")}/s)\n`,
    );
  }

  done(count: number): void {
    const seconds = ((performance.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`${count.toLocaleString("en")} ${this.verb} in ${seconds} s\n`);
  }
}

/** The server's own limits: a silent database ends a command, as it ends a request. */
function dbOptions(config: Config) {
  return { schema: config.databaseSchema, queryTimeoutMs: config.postgresPool.queryTimeoutMs };
}

async function withStore(
  fn: (store: Store) => Promise<void>,
  config = commandConfig(),
  storeOf = Store.of,
): Promise<void> {
  const db = await openDb(config.databaseUrl, dbOptions(config));
  try {
    await fn(storeOf(db));
  } finally {
    await db.close();
  }
}

/**
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish (new ones on kept-alive
 * connections get 503), write the queued audit events, close Redis and the database.
 * Writes that belong together are transactions, so an exit at any point leaves no half
 * of one. A second signal, or the timeout, exits at once.
 */
function onShutdownSignal(latchkey: Latchkey, timeoutSeconds: number): void {
  const { log } = latchkey.svc;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down: draining requests");
    setTimeout(() => {
      log.error({ timeoutSeconds }, "shutdown timed out: exiting with requests still open");
      process.exit(1);
    }, timeoutSeconds * 1000).unref();
    try {
      await latchkey.close();
      log.info("stopped");
      process.exit(0);
    } catch (err) {
      log.error({ err }, "shutdown failed");
      process.exit(1);
    }
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/**
 * How many Argon2id hashes run at once: UV_THREADPOOL_SIZE read as libuv reads it
 * (atoi, then 1 to 1024), which bin/latchkey.cjs sets to the cores; unset, libuv's 4.
 */
function threadPoolSize(): number {
  const set = process.env.UV_THREADPOOL_SIZE;
  if (!set) return 4;
  return Math.min(Math.max(Number.parseInt(set, 10) || 1, 1), 1024);
}

function describeDb(config: Config): string {
  return config.databaseUrl.startsWith("sqlite:")
    ? `SQLite ${config.databaseUrl.slice("sqlite:".length)}`
    : `PostgreSQL ${new URL(config.databaseUrl).host}${new URL(config.databaseUrl).pathname}`;
}

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? `latchkey: ${err.message}` : err);
  process.exit(1);
});
