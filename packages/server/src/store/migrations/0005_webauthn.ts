import type { Kysely } from "kysely";

// Forward-only: passkeys (WebAuthn credentials) and their single-use ceremony challenges.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("webauthn_credentials")
    // The credential ID (base64url) the authenticator chose; unique across all users (§6.1).
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("public_key", "text", (c) => c.notNull())
    .addColumn("counter", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("transports", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("device_type", "text", (c) => c.notNull())
    .addColumn("backed_up", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_used_at", "bigint")
    .execute();
  await db.schema
    .createIndex("webauthn_credentials_user_id")
    .on("webauthn_credentials")
    .column("user_id")
    .execute();

  await db.schema
    .createTable("webauthn_challenges")
    // SHA-256 of the challengeId handed to the client.
    .addColumn("id_hash", "text", (c) => c.primaryKey())
    .addColumn("challenge", "text", (c) => c.notNull())
    .addColumn("purpose", "text", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.references("users.id").onDelete("cascade"))
    // The session, the MFA token's jti, or null (passwordless login).
    .addColumn("bound_to", "text")
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addColumn("used_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("webauthn_challenges_expires_at")
    .on("webauthn_challenges")
    .column("expires_at")
    .execute();
}
