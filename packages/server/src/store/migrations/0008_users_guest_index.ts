import { type Kysely, sql } from "kysely";

// Forward-only: the hourly purge looks for guests that can never sign in again (no
// guest_email, made before a cut-off). Partial, so it holds only guests and costs real
// sign-ups nothing; guest_email leads so that SQLite prefers it to users_guest_email,
// whose IS NULL entries are every real account.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex("users_guest_created_at")
    .on("users")
    .columns(["guest_email", "created_at"])
    .where(sql.ref("guest"), "=", 1)
    .execute();
}
