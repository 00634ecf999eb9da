import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import {
  DEFAULT_MIGRATION_TABLE,
  Kysely,
  type MigrationResultSet,
  Migrator,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  sql,
} from "kysely";
import { migrationsFor } from "./migrations/index.js";
import { openPostgresPool } from "./postgres.js";
import type { Database } from "./schema.js";

export type Dialect = "sqlite" | "postgres";

export interface Db {
  kysely: Kysely<Database>;
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
  options: { poolSize?: number; idleTimeoutMs?: number; schema?: string } = {},
): Promise<Db> {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const { schema } = options;
    const pool = await openPostgresPool(url, {
      max: options.poolSize ?? 10,
      idleTimeoutMs: options.idleTimeoutMs ?? 10_000,
      schema,
    });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { kysely, dialect: "postgres", schema, close: () => kysely.destroy() };
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
    return { kysely, dialect: "sqlite", schema: undefined, close: () => kysely.destroy() };
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
): Promise<void> {
  await migrate(db, (m) => m.migrateToLatest(), onStep);
}

/** Up (or down) to the named migration: for upgrade tests that start from an old schema. */
export async function migrateTo(db: Db, name: string): Promise<void> {
  await migrate(
    db,
    (m) => m.migrateTo(name),
    () => {},
  );
}

async function migrate(
  db: Db,
  run: (migrator: Migrator) => Promise<MigrationResultSet>,
  onStep: (name: string) => void,
): Promise<void> {
  if (db.schema) await db.kysely.schema.createSchema(db.schema).ifNotExists().execute();
  const migrator = new Migrator({
    db: db.kysely,
    provider: migrationsFor(db.dialect),
    ...(db.schema ? { migrationTableSchema: db.schema } : {}),
  });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await run(migrator);
    for (const r of results ?? []) {
      if (r.status === "Success") onStep(r.migrationName);
    }
    if (!error) return;
    // No results: it failed in the migrator's own set-up, which introspects every schema
    // of the database and so fails when another client drops a table or schema meanwhile.
    const vanished = VANISHED_OBJECT.has((error as { code?: string }).code ?? "");
    if (results === undefined && vanished && attempt < MIGRATION_SETUP_ATTEMPTS) continue;
    throw error instanceof Error ? error : new Error(String(error));
  }
}

/**
 * For servers that do not migrate at start (functions): refuses a schema older than
 * this code, naming the step that fixes it. One query; Kysely's own Migrator.getMigrations
 * would introspect every table of the database first.
 */
export async function assertMigrated(db: Db): Promise<void> {
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
  const known = Object.keys(await migrationsFor(db.dialect).getMigrations());
  const pending = known.filter((name) => !applied.has(name));
  if (pending.length > 0) {
    throw new Error(
      `The database is missing migrations ${pending.join(", ")}: run \`latchkey migrate\` before starting this version`,
    );
  }
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
