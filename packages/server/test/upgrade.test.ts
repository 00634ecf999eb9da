import { randomBytes } from "node:crypto";
import { DEFAULT_MIGRATION_TABLE, type Kysely, type MigrationProvider, sql } from "kysely";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createApp, type Latchkey } from "../src/app.js";
import { loadConfig } from "../src/config/load.js";
import { ManualClock } from "../src/domain/clock.js";
import { sha256 } from "../src/domain/crypto.js";
import { uuidv7 } from "../src/domain/ids.js";
import { PasswordHasher } from "../src/domain/password.js";
import { RefreshTokenCodec } from "../src/domain/refresh-token.js";
import { type Db, migrateTo, migrateToLatest, openDb } from "../src/store/db.js";
import { migrationsFor } from "../src/store/migrations/index.js";
import { freshDatabase, json } from "./helpers.js";

/**
 * Upgrades: every released schema migrates forward to the latest with its data intact.
 * The oldest one, 0001_core, is seeded the way a server of that release wrote its rows;
 * the test then migrates to whatever is latest now, so it stays valid as migrations land.
 */

const FIRST = "0001_core";
const PASSWORD = "correct horse battery";
const ARGON2 = { argon2MemoryKiB: 8192, argon2Iterations: 1 };
const T0 = Date.parse("2026-01-01T00:00:00Z");

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function emptyDatabase(): Promise<{ url: string; schema?: string; db: Db }> {
  const database = await freshDatabase();
  cleanups.push(database.drop);
  const db = await openDb(database.url, { schema: database.schema });
  cleanups.push(() => db.close());
  if (database.schema) await db.kysely.schema.createSchema(database.schema).execute();
  return { url: database.url, ...(database.schema ? { schema: database.schema } : {}), db };
}

/** Names of the applied migrations, read straight from Kysely's table (no introspection). */
async function applied(db: Db): Promise<string[]> {
  const table = db.schema ? `${db.schema}.${DEFAULT_MIGRATION_TABLE}` : DEFAULT_MIGRATION_TABLE;
  const { rows } = await sql<{
    name: string;
  }>`select name from ${sql.table(table)} order by name`.execute(db.kysely);
  return rows.map((r) => r.name);
}

async function start(database: { url: string; schema?: string }, clock: ManualClock) {
  const config = loadConfig({}, {
    publicUrl: "http://latchkey.test",
    databaseUrl: database.url,
    ...(database.schema ? { databaseSchema: database.schema } : {}),
    password: ARGON2,
  } as Parameters<typeof loadConfig>[1]);
  const app = await createApp(config, { clock, logger: pino({ level: "silent" }) });
  cleanups.push(() => app.close());
  return app;
}

/** Rows as a 0001_core server wrote them: a user with a password, a live session, its key. */
async function seedFirstRelease(db: Db) {
  const refreshKey = randomBytes(32);
  const userId = uuidv7(T0);
  const sessionId = uuidv7(T0 + 1);
  const refreshToken = new RefreshTokenCodec(refreshKey).issue(sessionId, 0);
  const passwordHash = await new PasswordHasher({ ...defaultPolicy(), ...ARGON2 }).hash(PASSWORD);
  // Untyped on purpose: these are the first release's tables, not today's Database type.
  const k = db.kysely as unknown as Kysely<Record<string, Record<string, unknown>>>;
  await k
    .insertInto("server_secrets")
    .values({ name: "refresh_token_key", value: refreshKey.toString("base64url"), created_at: T0 })
    .execute();
  await k
    .insertInto("users")
    .values({
      id: userId,
      email: "ada@example.com",
      email_verified: 0,
      username: "Ada",
      username_key: "ada",
      password_hash: passwordHash,
      created_at: T0,
      updated_at: T0,
    })
    .execute();
  await k
    .insertInto("sessions")
    .values({
      id: sessionId,
      user_id: userId,
      refresh_hash: sha256(refreshToken),
      generation: 0,
      absolute_expires_at: T0 + 7 * 86_400_000,
      created_at: T0,
      last_seen_at: T0,
      ip: "198.51.100.7",
      user_agent: "curl/8.5.0",
      amr: '["pwd"]',
    })
    .execute();
  await k
    .insertInto("audit_events")
    .values({ id: uuidv7(T0), type: "register", user_id: userId, created_at: T0 })
    .execute();
  return { userId, sessionId, refreshToken };
}

function defaultPolicy() {
  return loadConfig({}).password;
}

describe("migrations", () => {
  it("apply from an empty database to the latest, and again as a no-op", async () => {
    const database = await emptyDatabase();
    await migrateToLatest(database.db);
    const all = Object.keys(await migrationsFor(database.db.dialect).getMigrations()).sort();
    expect(await applied(database.db)).toEqual(all);
    await migrateToLatest(database.db);
    expect(await applied(database.db)).toEqual(all);

    const clock = new ManualClock(T0);
    const app = await start(database, clock);
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/register",
      ...json({ email: "new@example.com", password: PASSWORD }),
    });
    expect(res.statusCode).toBe(201);
  });

  it("refuse a database a newer version migrated further, though every one of this code's is applied", async () => {
    const database = await emptyDatabase();
    const newer: MigrationProvider = {
      getMigrations: async () => ({
        ...(await migrationsFor(database.db.dialect).getMigrations()),
        "9999_from_a_newer_version": { async up() {} },
      }),
    };
    await migrateToLatest(database.db, () => {}, newer);
    // A start of this code must not find "nothing to do" and run on a schema it does not know.
    await expect(migrateToLatest(database.db)).rejects.toThrow("9999_from_a_newer_version");
  });

  it("carry a database at 0009 forward: its name is kept, its backfill marks proven addresses", async () => {
    const database = await emptyDatabase();
    await migrateTo(database.db, "0008_users_guest_index");
    const k = database.db.kysely as unknown as Kysely<Record<string, Record<string, unknown>>>;
    const user = (id: string, email: string, verified: number) =>
      k
        .insertInto("users")
        .values({ id, email, email_verified: verified, created_at: T0, updated_at: T0 })
        .execute();
    await user(uuidv7(T0), "proven@example.com", 1);
    await user(uuidv7(T0 + 1), "unproven@example.com", 0);
    // A server that ran 0009 before oauth_codes.session_epoch existed recorded it by this name.
    await migrateTo(database.db, "0009_users_email_ever_verified");
    await migrateToLatest(database.db);
    expect(await applied(database.db)).toEqual(
      Object.keys(await migrationsFor(database.db.dialect).getMigrations()).sort(),
    );
    const { rows } = await sql<{ email: string; ever: number }>`
      select email, email_ever_verified as ever from users order by email`.execute(k);
    expect(rows.map((r) => [r.email, Number(r.ever)])).toEqual([
      ["proven@example.com", 1],
      ["unproven@example.com", 0],
    ]);
    const codes = await sql<{
      n: number;
    }>`select count(session_epoch) as n from oauth_codes`.execute(k);
    expect(Number(codes.rows[0]?.n)).toBe(0);
  });

  it("carry a first-release database forward: its users sign in, its sessions refresh", async () => {
    const database = await emptyDatabase();
    await migrateTo(database.db, FIRST);
    expect(await applied(database.db)).toEqual([FIRST]);
    const seed = await seedFirstRelease(database.db);
    const sessionRows = () =>
      sql<Record<string, unknown>>`select * from sessions`.execute(database.db.kysely);
    const [seededSession] = (await sessionRows()).rows;

    // A function deployment refuses this schema until `latchkey migrate` has run.
    const functionConfig = loadConfig(
      {},
      {
        databaseUrl: database.url,
        ...(database.schema ? { databaseSchema: database.schema } : {}),
      },
    );
    const pending = Object.keys(await migrationsFor(database.db.dialect).getMigrations()).filter(
      (m) => m !== FIRST,
    );
    await expect(createApp(functionConfig, { migrate: false })).rejects.toThrow(
      `The database is missing migrations ${pending.join(", ")}: run \`latchkey migrate\``,
    );

    await migrateToLatest(database.db);
    expect(await applied(database.db)).toEqual(
      Object.keys(await migrationsFor(database.db.dialect).getMigrations()).sort(),
    );
    // 0006 rebuilt (SQLite) or altered (PostgreSQL) sessions: the row is as it was, and
    // refresh_hash is no longer unique.
    expect((await sessionRows()).rows).toEqual([{ ...seededSession, tokens_valid_after: null }]);
    expect(await sessionIndexes(database.db)).toEqual([
      { name: "sessions_absolute_expires_at", unique: false },
      { name: "sessions_user_id", unique: false },
    ]);

    const clock = new ManualClock(T0 + 3_600_000);
    const app = await start(database, clock);

    // The session issued before the upgrade rotates, and its successor works.
    const refreshed = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: seed.refreshToken }),
    });
    expect(refreshed.statusCode).toBe(200);
    const rotated = refreshed.json();
    expect(rotated.user).toMatchObject({ id: seed.userId, email: "ada@example.com" });
    expect(rotated.sessionExpiresIn).toBe(7 * 86_400 - 3_600);
    await expectProfile(app, rotated.accessToken, seed.userId);

    // The password hashed before the upgrade still signs in.
    const login = await app.http.inject({
      method: "POST",
      url: "/auth/login",
      ...json({ identifier: "ada", password: PASSWORD }),
    });
    expect(login.statusCode).toBe(200);
    const tokens = login.json();
    const me = await expectProfile(app, tokens.accessToken, seed.userId);
    expect(me).toMatchObject({
      username: "Ada",
      role: "user",
      tier: "free",
      emailVerified: false,
      mfaEnabled: false,
      createdAt: new Date(T0).toISOString(),
    });

    const sessions = await app.http.inject({
      url: "/sessions",
      headers: { authorization: `Bearer ${tokens.accessToken}` },
    });
    const listed = sessions.json().sessions as Array<{ id: string; ip: string | null }>;
    expect(listed.map((s) => s.id).sort()).toEqual(
      [seed.sessionId, decodeSid(tokens.accessToken)].sort(),
    );
    expect(listed.find((s) => s.id === seed.sessionId)?.ip).toBe("198.51.100.7");

    // The audit trail written before the upgrade is still there, after the new events.
    await app.svc.auditLog.flush();
    const events = await app.svc.store.audit.listForUser(seed.userId);
    expect(events.at(-1)).toMatchObject({ type: "register", created_at: T0 });

    // The pre-upgrade token is now the rotated one: inside the grace window it gets the
    // same successor, after it presenting it is reuse.
    const reused = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: seed.refreshToken }),
    });
    clock.advance(60_000); // past the grace window
    const reusedLate = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: seed.refreshToken }),
    });
    expect([reused.statusCode, reusedLate.statusCode]).toEqual([200, 401]);
    expect(reusedLate.json().code).toBe("refresh_token_reused");
    const count = await sql<{ n: number }>`select count(*) as n from users`.execute(
      database.db.kysely,
    );
    expect(Number(count.rows[0]?.n)).toBe(1);

    // The rebuilt table still belongs to its user: deleting the user deletes its sessions.
    await sql`delete from users where id = ${seed.userId}`.execute(database.db.kysely);
    expect((await sessionRows()).rows).toEqual([]);
  });
});

/** The sessions table's indexes other than its primary key's. */
async function sessionIndexes(db: Db): Promise<Array<{ name: string; unique: boolean }>> {
  const { rows } =
    db.dialect === "sqlite"
      ? await sql<{ name: string; unique: number }>`
          select name, "unique" from pragma_index_list('sessions') where origin <> 'pk'`.execute(
          db.kysely,
        )
      : await sql<{ name: string; unique: boolean }>`
          select indexname as name, indexdef like 'CREATE UNIQUE%' as unique from pg_indexes
          where tablename = 'sessions' and schemaname = current_schema()
            and indexname <> 'sessions_pkey'`.execute(db.kysely);
  return rows
    .map((r) => ({ name: r.name, unique: Boolean(r.unique) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

async function expectProfile(app: Latchkey, accessToken: string, userId: string) {
  const me = await app.http.inject({
    url: "/users/me",
    headers: { authorization: `Bearer ${accessToken}` },
  });
  expect(me.statusCode).toBe(200);
  expect(me.json().id).toBe(userId);
  return me.json();
}

function decodeSid(jwt: string): string {
  const payload = JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString());
  return payload.sid;
}

/** This code's migrations, then one that changes the schema and writes a row, then fails. */
const failingHalfway = (db: Db): MigrationProvider => ({
  getMigrations: async () => ({
    ...(await migrationsFor(db.dialect).getMigrations()),
    "9999_fails_halfway": {
      async up(trx: Kysely<unknown>) {
        await trx.schema.createTable("half_done").addColumn("id", "text").execute();
        await trx.schema.alterTable("users").addColumn("half_done", "text").execute();
        await sql`insert into half_done (id) values ('written')`.execute(trx);
        throw new Error("fails halfway");
      },
    },
  }),
});

/** The database's tables, and the users table's columns. */
async function schemaOf(db: Db) {
  const tables = (await db.kysely.introspection.getTables()).filter(
    (t) => !db.schema || t.schema === db.schema,
  );
  return {
    tables: tables.map((t) => t.name).sort(),
    userColumns: tables
      .find((t) => t.name === "users")
      ?.columns.map((c) => c.name)
      .sort(),
  };
}

// Regression: Kysely runs migrations in a transaction only where its adapter says DDL is
// transactional, which its SQLite adapter denies; a SQLite migration that failed halfway
// left what it had done (a table, a column, rows) without recording the migration, so every
// later start failed on it ("table half_done already exists").
describe("a migration that fails halfway", () => {
  it("leaves nothing of itself, on a database already migrated", async () => {
    const database = await emptyDatabase();
    await migrateToLatest(database.db);
    const before = await schemaOf(database.db);
    const steps: string[] = [];
    await expect(
      migrateToLatest(database.db, (s) => steps.push(s), failingHalfway(database.db)),
    ).rejects.toThrow("fails halfway");
    expect(await schemaOf(database.db)).toEqual(before);
    expect(await applied(database.db)).not.toContain("9999_fails_halfway");
    expect(steps).toEqual([]);
  });

  it("takes the steps of its run back with it, and the next run applies them", async () => {
    const database = await emptyDatabase();
    await migrateTo(database.db, FIRST);
    const before = await schemaOf(database.db);
    const steps: string[] = [];
    await expect(
      migrateToLatest(database.db, (s) => steps.push(s), failingHalfway(database.db)),
    ).rejects.toThrow("fails halfway");
    // The run is one transaction, on SQLite as on PostgreSQL: 0002 onwards are undone too,
    // and none was reported as applied.
    expect(await schemaOf(database.db)).toEqual(before);
    expect(await applied(database.db)).toEqual([FIRST]);
    expect(steps).toEqual([]);

    await migrateToLatest(database.db, (s) => steps.push(s));
    const all = Object.keys(await migrationsFor(database.db.dialect).getMigrations()).sort();
    expect(await applied(database.db)).toEqual(all);
    expect(steps).toEqual(all.filter((m) => m !== FIRST));
  });
});
