import { type Kysely, sql } from "kysely";

// Forward-only. users.email_ever_verified: whether the account's address was ever proven.
// Claiming an account whose address is unverified (a provider that vouches for it, a
// reset or magic link) ends the ways in set up before only if it never was: then they may
// be a squatter's. An account that was proven and then moved to a new address belongs to
// whoever proved the old one.
// oauth_codes.session_epoch: the user's session epoch when the callback handed the code,
// so a code handed before a claim (or any end of all sessions) cannot be exchanged after.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("users")
    .addColumn("email_ever_verified", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`UPDATE users SET email_ever_verified = 1 WHERE email_verified = 1`.execute(db);
  await db.schema
    .alterTable("oauth_codes")
    .addColumn("session_epoch", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}
