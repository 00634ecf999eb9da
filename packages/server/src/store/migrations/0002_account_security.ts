import type { Kysely } from "kysely";

// Forward-only: API tokens, MFA backup codes, guest emails and session token floors.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("api_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("prefix", "text", (c) => c.notNull())
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    .addColumn("scopes", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("expires_at", "bigint")
    .addColumn("last_used_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("api_tokens_user_id").on("api_tokens").column("user_id").execute();

  await db.schema
    .createTable("backup_codes")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("code_hash", "text", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("backup_codes_user_hash")
    .on("backup_codes")
    .columns(["user_id", "code_hash"])
    .execute();

  // A guest's email is theirs only to come back with; it never blocks a real account.
  await db.schema.alterTable("users").addColumn("guest_email", "text").execute();
  await db.schema
    .createIndex("users_guest_email")
    .on("users")
    .column("guest_email")
    .unique()
    .execute();
  // Access tokens issued before this instant are refused (set when a screen lock lifts).
  await db.schema.alterTable("sessions").addColumn("tokens_valid_after", "bigint").execute();
}
