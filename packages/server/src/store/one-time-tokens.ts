import type { Kysely } from "kysely";
import { uuidv7 } from "../domain/ids.js";
import type { Database, OneTimePurpose } from "./schema.js";

export interface NewOneTimeToken {
  userId: string;
  purpose: OneTimePurpose;
  tokenHash: string;
  email: string;
  expiresAt: number;
}

/** Mailed single-use links, by hash only. */
export class OneTimeTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(token: NewOneTimeToken, now: number): Promise<void> {
    await this.db
      .insertInto("one_time_tokens")
      .values({
        id: uuidv7(now),
        user_id: token.userId,
        purpose: token.purpose,
        token_hash: token.tokenHash,
        email: token.email,
        expires_at: token.expiresAt,
        used_at: null,
        created_at: now,
      })
      .execute();
  }

  /**
   * Whose live token this is, read without locking anything: a transaction that will
   * use the token locks this user first (the one lock order: the user's row, then
   * their token rows). Undefined for unknown, used and expired tokens.
   */
  async ownerOf(hash: string, purpose: OneTimePurpose, now: number): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("one_time_tokens")
      .select("user_id")
      .where("token_hash", "=", hash)
      .where("purpose", "=", purpose)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .executeTakeFirst();
    return row?.user_id;
  }

  /**
   * Uses the token once: a compare-and-set, so of two concurrent uses exactly one
   * gets the row. Unknown, used and expired tokens all answer undefined.
   */
  async consume(
    hash: string,
    purpose: OneTimePurpose,
    now: number,
  ): Promise<{ userId: string; email: string } | undefined> {
    const row = await this.db
      .updateTable("one_time_tokens")
      .set({ used_at: now })
      .where("token_hash", "=", hash)
      .where("purpose", "=", purpose)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .returning(["user_id", "email"])
      .executeTakeFirst();
    return row && { userId: row.user_id, email: row.email };
  }

  /** Voids every unused token of these purposes (a reset, a password change, a new link). */
  async voidForUser(
    userId: string,
    purposes: readonly OneTimePurpose[],
    now: number,
  ): Promise<void> {
    await this.db
      .updateTable("one_time_tokens")
      .set({ used_at: now })
      .where("user_id", "=", userId)
      .where("purpose", "in", purposes)
      .where("used_at", "is", null)
      .execute();
  }

  /** Deletes tokens that can no longer be used. */
  async purgeBefore(before: number): Promise<number> {
    const result = await this.db
      .deleteFrom("one_time_tokens")
      .where((eb) => eb.or([eb("expires_at", "<", before), eb("used_at", "<", before)]))
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
