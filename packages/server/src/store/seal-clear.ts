import { type Kysely, sql } from "kysely";
import { SEALED_PREFIX } from "../domain/secret-box.js";
import type { Database } from "./schema.js";

/**
 * Seals every value of `table.column` stored in clear (no SEALED_PREFIX; NULL is left
 * alone), each by compare-and-set on the clear value, so nodes starting together seal it
 * once. Returns how many this call sealed. For the few columns that hold secrets.
 */
export async function sealClearColumn(
  db: Kysely<Database>,
  table: "server_secrets" | "signing_keys" | "users",
  key: string,
  column: string,
  seal: (clear: string) => string,
): Promise<number> {
  const { rows } = await sql<{ key: string; clear: string }>`
    select ${sql.ref(key)} as key, ${sql.ref(column)} as clear from ${sql.table(table)}
    where ${sql.ref(column)} not like ${`${SEALED_PREFIX}%`}`.execute(db);
  let sealed = 0;
  for (const row of rows) {
    const result = await sql`
      update ${sql.table(table)} set ${sql.ref(column)} = ${seal(row.clear)}
      where ${sql.ref(key)} = ${row.key} and ${sql.ref(column)} = ${row.clear}`.execute(db);
    sealed += Number(result.numAffectedRows ?? 0);
  }
  return sealed;
}
