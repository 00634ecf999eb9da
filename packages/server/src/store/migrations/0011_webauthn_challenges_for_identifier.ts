import type { Kysely } from "kysely";

// Forward-only: whether a passwordless sign-in challenge was issued for an identifier. It
// then takes only that account's passkeys (user_id), and none when no account has the
// identifier (user_id null), so answering with one's own passkey cannot tell the two apart.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("webauthn_challenges")
    .addColumn("for_identifier", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}
