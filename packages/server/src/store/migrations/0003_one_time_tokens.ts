import type { Kysely } from "kysely";

// Forward-only: mailed one-time links (email verification, password reset, magic sign-in).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("one_time_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    // The address the link went to: a link stops working once the account's email changes.
    .addColumn("email", "text", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("one_time_tokens_user_purpose")
    .on("one_time_tokens")
    .columns(["user_id", "purpose"])
    .execute();
  await db.schema
    .createIndex("one_time_tokens_expires_at")
    .on("one_time_tokens")
    .column("expires_at")
    .execute();
}
