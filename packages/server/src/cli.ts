#!/usr/bin/env -S node --max-semi-space-size=8
// --max-semi-space-size=8 (MiB): the young generation grows to 16 MiB per semi-space
// during start-up and keeps its pages; 8 holds idle RSS near 110 MB with no measured
// throughput loss (bench/RESULTS.md). `npm start` passes the same flag.
import type { AddressInfo } from "node:net";
import { Command } from "commander";
import { createApp } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config/load.js";
import { uuidv7 } from "./domain/ids.js";
import { PasswordHasher } from "./domain/password.js";
import { assertPasswordAcceptable } from "./domain/password-policy.js";
import { normalizeEmail } from "./domain/user.js";
import { migrateToLatest, openDb } from "./store/db.js";
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
    const url = `http://${config.host}:${port}`;
    latchkey.svc.log.info(
      { url, database: describeDb(config), readyMs: Math.round(performance.now() - started) },
      `Latchkey is ready at ${url} (API docs at ${url}/docs)`,
    );
    const stop = async (signal: string) => {
      latchkey.svc.log.info({ signal }, "shutting down: draining requests");
      await latchkey.close();
      process.exit(0);
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });

program
  .command("migrate")
  .description("Apply pending database migrations and exit")
  .action(async () => {
    const config = loadConfig();
    const db = await openDb(config.databaseUrl, { schema: config.databaseSchema });
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
    const config = loadConfig();
    const password = process.env[opts.passwordEnv];
    if (!password) throw new ConfigError(`${opts.passwordEnv} is not set`);
    const hasher = new PasswordHasher(config.password);
    await assertPasswordAcceptable(password, opts, config.password);
    const db = await openDb(config.databaseUrl, { schema: config.databaseSchema });
    try {
      await migrateToLatest(db);
      const now = Date.now();
      const user = await Store.of(db).users.create(
        {
          id: uuidv7(now),
          email: opts.email ? normalizeEmail(opts.email) : null,
          username: opts.username,
          passwordHash: await hasher.hash(password),
          role: "admin",
        },
        now,
      );
      console.log(`Created admin ${user.username} (${user.id})`);
    } finally {
      await db.close();
    }
  });

function describeDb(config: Config): string {
  return config.databaseUrl.startsWith("sqlite:")
    ? `SQLite ${config.databaseUrl.slice("sqlite:".length)}`
    : `PostgreSQL ${new URL(config.databaseUrl).host}${new URL(config.databaseUrl).pathname}`;
}

program.parseAsync().catch((err: unknown) => {
  console.error(err instanceof Error ? `latchkey: ${err.message}` : err);
  process.exit(1);
});
