import type { Kysely } from "kysely";
import { SEALED_PREFIX } from "../domain/secret-box.js";
import type { Database } from "./schema.js";

export class ServerSecretStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Returns the stored value, creating it from `make` first when absent. Two nodes
   * starting at once both end with the value that was inserted first.
   */
  async getOrCreate(name: string, make: () => string, now: number): Promise<string> {
    await this.db
      .insertInto("server_secrets")
      .values({ name, value: make(), created_at: now })
      .onConflict((oc) => oc.column("name").doNothing())
      .execute();
    const row = await this.db
      .selectFrom("server_secrets")
      .select("value")
      .where("name", "=", name)
      .executeTakeFirstOrThrow();
    return row.value;
  }

  /** Seals each value stored in clear (compare-and-set on it); how many were. */
  async sealClear(seal: (clear: string) => string): Promise<number> {
    const rows = await this.db
      .selectFrom("server_secrets")
      .select(["name", "value"])
      .where("value", "not like", `${SEALED_PREFIX}%`)
      .execute();
    let sealed = 0;
    for (const row of rows) {
      const result = await this.db
        .updateTable("server_secrets")
        .set({ value: seal(row.value) })
        .where("name", "=", row.name)
        .where("value", "=", row.value)
        .executeTakeFirst();
      sealed += Number(result.numUpdatedRows);
    }
    return sealed;
  }
}
