import type { Kysely } from "kysely";

// Forward-only: federated identities (OAuth 2.0 / OpenID Connect) and the one-time
// codes that hand a finished federated sign-in to a client in `body` delivery mode.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("identities")
    .addColumn("provider", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("email", "text")
    .addColumn("linked_at", "bigint", (c) => c.notNull())
    // The IdP's tokens, sealed with the master key; null unless the provider is set to keep them.
    .addColumn("tokens", "text")
    .addPrimaryKeyConstraint("identities_pkey", ["provider", "subject"])
    .addUniqueConstraint("identities_user_provider", ["user_id", "provider"])
    .execute();

  await db.schema
    .createTable("oauth_codes")
    .addColumn("code_hash", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
    .addColumn("provider", "text", (c) => c.notNull())
    .addColumn("ip", "text")
    .addColumn("user_agent", "text")
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("oauth_codes_expires_at")
    .on("oauth_codes")
    .column("expires_at")
    .execute();
}
