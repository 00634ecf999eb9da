import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import { sealClearColumn } from "./seal-clear.js";

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

  /** Seals each value stored in clear; how many were. */
  sealClear(seal: (clear: string) => string): Promise<number> {
    return sealClearColumn(this.db, "server_secrets", "name", "value", seal);
  }
}
