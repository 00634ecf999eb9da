import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import {
  DEFAULT_MIGRATION_TABLE,
  Kysely,
  type MigrationProvider,
  type MigrationResultSet,
  Migrator,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  sql,
} from "kysely";
import { migrationsFor } from "./migrations/index.js";
import { openPostgresPool, PG_QUERY_TIMEOUT_MS } from "./postgres.js";
import type { Database } from "./schema.js";

export type Dialect = "sqlite" | "postgres";

export interface Db {
  /** On PostgreSQL every query is bounded by the query timeout (postgres.ts). */
  kysely: Kysely<Database>;
  /**
   * The same connections without that bound, for work that may rightly take long:
   * migrations and the purge job. SQLite has no such timeout: the same as `kysely`.
   */
  longWork: Kysely<Database>;
  dialect: Dialect;
  /** PostgreSQL schema holding Latchkey's tables (undefined: the connection's default). */
  schema: string | undefined;
  close(): Promise<void>;
}

/**
 * Opens the database named by a URL: postgres://… or sqlite:<file> (":memory:" allowed).
 * On PostgreSQL, `schema` keeps every table in a schema of its own, and the first
 * connection is made before this returns (see postgres.ts).
 */
export async function openDb(
  url: string,
  options: {
    poolSize?: number;
    idleTimeoutMs?: number;
    schema?: string;
    queryTimeoutMs?: number;
  } = {},
): Promise<Db> {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { schema } = options;
    const pools = await openPostgresPool(url, {
      max: options.poolSize ?? 10,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      schema,
      queryTimeoutMs: options.queryTimeoutMs ?? PG_QUERY_TIMEOUT_MS,
    });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pools.bounded }) });
    const longWork = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: pools.longWork }),
    });
    const close = async () => {
      await Promise.all([kysely.destroy(), longWork.destroy()]);
      await pools.end();
    };
    return { kysely, longWork, dialect: "postgres", schema, close };
  }
  if (url.startsWith("sqlite:")) {
    const file = url.slice("sqlite:".length);
    if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
    const sqlite = new SQLite(file);
    sqlite.pragma("journal_mode = WAL");
    // NORMAL is durable across application crashes in WAL mode; only an OS crash
    // can lose the last commits (https://sqlite.org/pragma.html#pragma_synchronous).
    sqlite.pragma("synchronous = NORMAL");
    sqlite.pragma("foreign_keys = ON");
    sqlite.pragma("busy_timeout = 5000");
    const kysely = new Kysely<Database>({
      dialect: new SqliteDialect({ database: withStatementCache(sqlite) }),
    });
    return {
      kysely,
      longWork: kysely,
      dialect: "sqlite",
      schema: undefined,
      close: () => kysely.destroy(),
    };
  }
  throw new Error(`Unsupported database URL (use postgres://… or sqlite:<file>): ${redact(url)}`);
}

/** Distinct SQL texts are few (each query site yields one); this bounds memory all the same. */
const MAX_CACHED_STATEMENTS = 500;

/**
 * Kysely prepares every query anew; on the hot paths preparing cost as much as
 * running (bench/RESULTS.md, profile notes). better-sqlite3 statements are
 * reusable, so keep one per SQL text.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (!statement) {
        if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
        statement = sqlite.prepare(sql);
        statements.set(sql, statement);
      }
      return statement;
    },
  };
}

export async function migrateToLatest(
  db: Db,
  onStep: (name: string) => void = () => {},
  /** This code's migrations; tests add one that fails. */
  migrations: MigrationProvider = migrationsFor(db.dialect),
): Promise<void> {
  // Most starts find nothing to do. Kysely's Migrator would find that out by introspecting
  // every table of the database (~0.2 s on PostgreSQL); one query says it. Only when the
  // applied set is exactly this code's: else the Migrator runs, and refuses a schema that
  // a newer version migrated further.
  const { applied, known } = await migrationState(db, migrations);
  if (applied.size === known.length && known.every((name) => applied.has(name))) return;
  await migrate(db, (m) => m.migrateToLatest(), onStep, migrations);
}

/** Up (or down) to the named migration: for upgrade tests that start from an old schema. */
export async function migrateTo(db: Db, name: string): Promise<void> {
  await migrate(
    db,
    (m) => m.migrateTo(name),
    () => {},
    migrationsFor(db.dialect),
  );
}

async function migrate(
  db: Db,
  run: (migrator: Migrator) => Promise<MigrationResultSet>,
  onStep: (name: string) => void,
  migrations: MigrationProvider,
): Promise<void> {
  // Unbounded: building an index on a large table may take longer than any request may.
  if (db.schema) await db.longWork.schema.createSchema(db.schema).ifNotExists().execute();
  const runOn = (kysely: Kysely<Database>) =>
    run(
      new Migrator({
        db: kysely,
        provider: migrations,
        ...(db.schema ? { migrationTableSchema: db.schema } : {}),
      }),
    );
  for (let attempt = 1; ; attempt++) {
    const { error, results } =
      db.dialect === "sqlite"
        ? await inWriteTransaction(db.longWork, runOn)
        : await runOn(db.longWork);
    if (!error) {
      // Only now: a failed run is rolled back whole, the steps reported done before it too.
      for (const r of results ?? []) {
        if (r.status === "Success") onStep(r.migrationName);
      }
      return;
    }
    // No results: it failed in the migrator's own set-up, which introspects every schema
    // of the database and so fails when another client drops a table or schema meanwhile.
    const vanished = VANISHED_OBJECT.has((error as { code?: string }).code ?? "");
    if (results === undefined && vanished && attempt < MIGRATION_SETUP_ATTEMPTS) continue;
    throw error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * SQLite runs DDL in transactions, but Kysely's SqliteAdapter says it cannot
 * (`supportsTransactionalDdl` false), so its Migrator ran every statement on its own and a
 * migration that failed halfway left half of it applied, unrecorded: the next start failed
 * on what was already there. Here the whole run is one transaction, as Kysely makes it on
 * PostgreSQL: a failure leaves the schema as it was. IMMEDIATE takes the write lock before
 * the migrator reads what is applied (Kysely's migration lock does nothing on SQLite), so
 * another process migrating the same file (a second `serve`, `latchkey migrate`) waits for
 * it (busy_timeout) and then finds nothing left to do, instead of applying the same steps.
 */
async function inWriteTransaction(
  kysely: Kysely<Database>,
  run: (connection: Kysely<Database>) => Promise<MigrationResultSet>,
): Promise<MigrationResultSet> {
  return kysely.connection().execute(async (connection) => {
    await sql`begin immediate`.execute(connection);
    const result = await run(connection).catch((error: unknown) => ({ error }));
    if (!result.error) {
      await sql`commit`.execute(connection);
      return result;
    }
    // SQLite may have rolled back on its own already (SQLITE_FULL, SQLITE_BUSY, ...).
    await sql`rollback`.execute(connection).catch(() => {});
    return result;
  });
}

/**
 * For servers that do not migrate at start (functions): refuses a schema older than
 * this code, naming the step that fixes it. One query; Kysely's own Migrator.getMigrations
 * would introspect every table of the database first.
 */
export async function assertMigrated(db: Db): Promise<void> {
  const { applied, known } = await migrationState(db, migrationsFor(db.dialect));
  const pending = known.filter((name) => !applied.has(name));
  if (pending.length > 0) {
    throw new Error(
      `The database is missing migrations ${pending.join(", ")}: run \`latchkey migrate\` before starting this version`,
    );
  }
}

/** The migrations the database records as applied, and the names `migrations` holds. */
async function migrationState(
  db: Db,
  migrations: MigrationProvider,
): Promise<{ applied: Set<string>; known: string[] }> {
  const table = db.schema
    ? sql.table(`${db.schema}.${DEFAULT_MIGRATION_TABLE}`)
    : sql.table(DEFAULT_MIGRATION_TABLE);
  let applied: Set<string>;
  try {
    const { rows } = await sql<{ name: string }>`select name from ${table}`.execute(db.kysely);
    applied = new Set(rows.map((r) => r.name));
  } catch (err) {
    if (!isMissingTable(err)) throw err;
    applied = new Set(); // never migrated
  }
  return { applied, known: Object.keys(await migrations.getMigrations()) };
}

/** PostgreSQL: invalid_schema_name, undefined_table, undefined_column, undefined_object. */
const VANISHED_OBJECT = new Set(["3F000", "42P01", "42703", "42704"]);
const MIGRATION_SETUP_ATTEMPTS = 5;

function isMissingTable(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: string; message?: string };
  return code === "42P01" || (code === "SQLITE_ERROR" && /no such table/.test(message ?? ""));
}

/** Unique-constraint violation on either database. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return (
    code === "23505" ||
    code === "SQLITE_CONSTRAINT_UNIQUE" ||
    code === "SQLITE_CONSTRAINT_PRIMARYKEY"
  );
}

/**
 * A row named a user that is gone: every foreign key in the schema references users.id,
 * so this is a write that raced the account's deletion.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === "23503" || code === "SQLITE_CONSTRAINT_FOREIGNKEY";
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");
