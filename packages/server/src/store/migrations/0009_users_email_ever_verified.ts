import { type Kysely, sql } from "kysely";

// Forward-only: whether the account's address was ever proven. Claiming an account whose
// address is unverified (a provider that vouches for it, a reset or magic link) ends the
// ways in set up before only if it never was: then they may be a squatter's. An account
// that was proven and then moved to a new address belongs to whoever proved the old one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("users")
    .addColumn("email_ever_verified", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`UPDATE users SET email_ever_verified = 1 WHERE email_verified = 1`.execute(db);
}
