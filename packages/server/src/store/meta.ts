import type { Kysely } from "kysely";
import { isUniqueViolation } from "./db.js";
import type { Database } from "./schema.js";

export class MetaStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Inserts a marker once; false when it already existed (used to make setup one-shot). */
  async claim(key: string, value: string): Promise<boolean> {
    try {
      await this.db.insertInto("meta").values({ key, value }).execute();
      return true;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }
}
