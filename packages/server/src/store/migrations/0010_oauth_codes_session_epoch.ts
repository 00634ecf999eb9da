import type { Kysely } from "kysely";

// Forward-only: the user's session epoch when the callback handed the exchange code, so a
// code handed before a claim (or any end of all sessions) cannot be exchanged after it.
// A migration of its own, not folded into 0009: a database 0009 already ran on records it
// by name, and Kysely refuses to migrate when an applied migration is missing.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("oauth_codes")
    .addColumn("session_epoch", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}
