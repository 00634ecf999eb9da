import { type Kysely, sql } from "kysely";
import type { Dialect } from "../db.js";

/**
 * Sessions lose the unique index on refresh_hash. No query finds a session by it: rotation
 * matches id and hash together, which the primary key serves, and every refresh token
 * carries its session's id, so two rows cannot share a hash anyway. The index cost a
 * b-tree write on every login and every refresh: without it a session insert takes 41
 * instead of 52 µs of CPU and a rotation 25 instead of 38 (bench/RESULTS.md, 2026-12-06).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect === "postgres") {
    // PostgreSQL's name for the column constraint 0001_core declared.
    await sql`alter table sessions drop constraint sessions_refresh_hash_key`.execute(db);
    return;
  }
  // SQLite cannot drop a column's UNIQUE: the table is rebuilt
  // (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema
  // Changes"), within the one transaction a migration run takes (store/db.ts). No other
  // table references sessions, so dropping it cascades nowhere.
  await db.schema
    .createTable("sessions_new")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("refresh_hash", "text", (c) => c.notNull())
    .addColumn("previous_refresh_hash", "text")
    .addColumn("rotated_at", "bigint")
    .addColumn("generation", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("absolute_expires_at", "bigint", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_seen_at", "bigint", (c) => c.notNull())
    .addColumn("ip", "text")
    .addColumn("user_agent", "text")
    .addColumn("browser", "text")
    .addColumn("os", "text")
    .addColumn("amr", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("remember_me", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("locked_at", "bigint")
    .addColumn("revoked_at", "bigint")
    .addColumn("revoked_reason", "text")
    .addColumn("tokens_valid_after", "bigint")
    .execute();
  // The copy names every column of the new table, so it never depends on their order.
  const { rows } = await sql<{
    name: string;
  }>`select name from pragma_table_info('sessions_new')`.execute(db);
  const columns = sql.join(rows.map((r) => sql.ref(r.name)));
  await sql`insert into sessions_new (${columns}) select ${columns} from sessions`.execute(db);
  await db.schema.dropTable("sessions").execute();
  await db.schema.alterTable("sessions_new").renameTo("sessions").execute();
  await db.schema.createIndex("sessions_user_id").on("sessions").column("user_id").execute();
  await db.schema
    .createIndex("sessions_absolute_expires_at")
    .on("sessions")
    .column("absolute_expires_at")
    .execute();
}
