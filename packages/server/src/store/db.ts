import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import { migrations } from "./migrations/index.js";
import type { Database } from "./schema.js";

export type Dialect = "sqlite" | "postgres";

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  close(): Promise<void>;
}

const PG_INT8 = 20;

/** Opens the database named by a URL: postgres://… or sqlite:<file> (":memory:" allowed). */
export function openDb(url: string, options: { poolSize?: number } = {}): Db {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      // Epoch-millisecond columns are bigint; they fit a JS number exactly.
      types: {
        getTypeParser: (oid: number, format?: "text" | "binary") =>
          oid === PG_INT8 ? Number : pg.types.getTypeParser(oid, format as "text"),
      } as pg.CustomTypesConfig,
    });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { kysely, dialect: "postgres", close: () => kysely.destroy() };
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
    const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    return { kysely, dialect: "sqlite", close: () => kysely.destroy() };
  }
  throw new Error(`Unsupported database URL (use postgres://… or sqlite:<file>): ${redact(url)}`);
}

export async function migrateToLatest(
  db: Db,
  onStep: (name: string) => void = () => {},
): Promise<void> {
  const migrator = new Migrator({ db: db.kysely, provider: migrations });
  const { error, results } = await migrator.migrateToLatest();
  for (const r of results ?? []) {
    if (r.status === "Success") onStep(r.migrationName);
  }
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/** Unique-constraint violation on either database. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return (
    code === "23505" ||
    code === "SQLITE_CONSTRAINT_UNIQUE" ||
    code === "SQLITE_CONSTRAINT_PRIMARYKEY"
  );
}

const redact = (url: string) => url.replace(/\/\/[^@/]*@/, "//***@");
