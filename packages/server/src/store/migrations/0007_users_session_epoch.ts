import type { Kysely } from "kysely";

// Forward-only: a counter that every "end all sessions" event (password reset or change,
// logout everywhere, an admin's revocation) moves on. A sign-in whose first step read the
// account before such an event finds the counter moved and does not keep its session.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("users")
    .addColumn("session_epoch", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}
