import type { Kysely } from "kysely";
import { uuidv7 } from "../domain/ids.js";
import type { Database } from "./schema.js";

/** One-time recovery codes, by HMAC only (see BackupCodeHasher). */
export class BackupCodeStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The user's whole set becomes `hashes`; every earlier code, used or not, is gone. */
  async replace(userId: string, hashes: string[], now: number): Promise<void> {
    await this.deleteForUser(userId);
    await this.db
      .insertInto("backup_codes")
      .values(
        hashes.map((code_hash) => ({
          id: uuidv7(now),
          user_id: userId,
          code_hash,
          used_at: null,
          created_at: now,
        })),
      )
      .execute();
  }

  /** Marks an unused code used; true only for the one caller that did (compare-and-set). */
  async consume(userId: string, hash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable("backup_codes")
      .set({ used_at: now })
      .where("user_id", "=", userId)
      .where("code_hash", "=", hash)
      .where("used_at", "is", null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async deleteForUser(userId: string): Promise<void> {
    await this.db.deleteFrom("backup_codes").where("user_id", "=", userId).execute();
  }
}
