import type { Kysely, Selectable } from "kysely";
import type { Database, SigningKeysTable } from "./schema.js";
import { sealClearColumn } from "./seal-clear.js";

export type SigningKeyRow = Selectable<SigningKeysTable>;

export class SigningKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Keys still valid for verification at `now`, newest first. */
  listLive(now: number): Promise<SigningKeyRow[]> {
    return this.db
      .selectFrom("signing_keys")
      .selectAll()
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .orderBy("created_at", "desc")
      .orderBy("kid", "desc") // keys made in the same millisecond: one order everywhere
      .execute();
  }

  /** The kid a node should sign with: the newest active key's. */
  async activeKid(): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("signing_keys")
      .select("kid")
      .where("retired_at", "is", null)
      .orderBy("created_at", "desc")
      .orderBy("kid", "desc")
      .limit(1)
      .executeTakeFirst();
    return row?.kid;
  }

  async insert(key: SigningKeyRow): Promise<void> {
    await this.db.insertInto("signing_keys").values(key).execute();
  }

  /**
   * Stops every other active key created up to `now` from signing; they stay
   * published until `expiresAt`. A rotation racing this one with a later key keeps
   * that key, so two rotations cannot leave no active key.
   */
  async retireOthers(kid: string, now: number, expiresAt: number): Promise<number> {
    const result = await this.db
      .updateTable("signing_keys")
      .set({ retired_at: now, expires_at: expiresAt })
      .where("kid", "!=", kid)
      .where("created_at", "<=", now)
      .where("retired_at", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /**
   * Deletes keys no longer published (`expires_at` passed): nothing verifies with them,
   * and their private halves need not wait in the database and its backups. How many.
   */
  async purgeExpired(now: number): Promise<number> {
    const result = await this.db
      .deleteFrom("signing_keys")
      .where("expires_at", "<=", now)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Seals each private key stored in clear; how many were. */
  sealClear(seal: (clear: string) => string): Promise<number> {
    return sealClearColumn(this.db, "signing_keys", "kid", "private_jwk", seal);
  }
}
