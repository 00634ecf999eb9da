import type { Kysely } from "kysely";

// Forward-only. `bigint` holds epoch milliseconds; SQLite gives it INTEGER affinity.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("users")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("email", "text", (c) => c.unique())
    .addColumn("email_verified", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("username", "text")
    .addColumn("username_key", "text", (c) => c.unique())
    .addColumn("password_hash", "text")
    .addColumn("role", "text", (c) => c.notNull().defaultTo("user"))
    .addColumn("tier", "text", (c) => c.notNull().defaultTo("free"))
    .addColumn("subscription_status", "text", (c) => c.notNull().defaultTo("none"))
    .addColumn("guest", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("disabled", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("allowed_ips", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("session_duration_minutes", "integer")
    .addColumn("single_session", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("screen_lock_minutes", "integer")
    .addColumn("totp_secret", "text")
    .addColumn("mfa_enabled", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("sessions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("refresh_hash", "text", (c) => c.notNull().unique())
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
    .execute();
  await db.schema.createIndex("sessions_user_id").on("sessions").column("user_id").execute();
  await db.schema
    .createIndex("sessions_absolute_expires_at")
    .on("sessions")
    .column("absolute_expires_at")
    .execute();

  await db.schema
    .createTable("signing_keys")
    .addColumn("kid", "text", (c) => c.primaryKey())
    .addColumn("alg", "text", (c) => c.notNull())
    .addColumn("public_jwk", "text", (c) => c.notNull())
    .addColumn("private_jwk", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("retired_at", "bigint")
    .addColumn("expires_at", "bigint")
    .execute();

  await db.schema
    .createTable("server_secrets")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("audit_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("user_id", "text")
    .addColumn("session_id", "text")
    .addColumn("ip", "text")
    .addColumn("user_agent", "text")
    .addColumn("detail", "text", (c) => c.notNull().defaultTo("{}"))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("audit_events_created_at")
    .on("audit_events")
    .column("created_at")
    .execute();
  await db.schema
    .createIndex("audit_events_user_id")
    .on("audit_events")
    .column("user_id")
    .execute();

  await db.schema
    .createTable("meta")
    .addColumn("key", "text", (c) => c.primaryKey())
    .addColumn("value", "text", (c) => c.notNull())
    .execute();
}
