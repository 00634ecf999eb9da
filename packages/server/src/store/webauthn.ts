import type { Kysely, Selectable } from "kysely";
import type { Challenge, ChallengePurpose, Passkey } from "../domain/webauthn.js";
import type { Database, WebauthnCredentialsTable } from "./schema.js";

export type NewPasskey = Omit<Passkey, "createdAt" | "lastUsedAt">;

/** Passkeys and the challenges of their ceremonies. */
export class WebauthnStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(p: NewPasskey, now: number): Promise<Passkey> {
    const row = await this.db
      .insertInto("webauthn_credentials")
      .values({
        id: p.id,
        user_id: p.userId,
        name: p.name,
        public_key: p.publicKey,
        counter: p.counter,
        transports: JSON.stringify(p.transports),
        device_type: p.deviceType,
        backed_up: p.backedUp ? 1 : 0,
        created_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toPasskey(row);
  }

  async find(id: string): Promise<Passkey | undefined> {
    const row = await this.db
      .selectFrom("webauthn_credentials")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return row && toPasskey(row);
  }

  /** The user's passkeys, oldest first. */
  async listForUser(userId: string): Promise<Passkey[]> {
    const rows = await this.db
      .selectFrom("webauthn_credentials")
      .selectAll()
      .where("user_id", "=", userId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toPasskey);
  }

  async rename(id: string, userId: string, name: string): Promise<Passkey | undefined> {
    const row = await this.db
      .updateTable("webauthn_credentials")
      .set({ name })
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .returningAll()
      .executeTakeFirst();
    return row && toPasskey(row);
  }

  async delete(id: string, userId: string): Promise<boolean> {
    const result = await this.db
      .deleteFrom("webauthn_credentials")
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /**
   * Records a verified use. Compare-and-set on the counter: of two assertions racing
   * with the same counter value only one moves it (WebAuthn §6.1.1 signature counter).
   */
  async recordUse(
    id: string,
    expectedCounter: number,
    use: { counter: number; backedUp: boolean },
    now: number,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable("webauthn_credentials")
      .set({ counter: use.counter, backed_up: use.backedUp ? 1 : 0, last_used_at: now })
      .where("id", "=", id)
      .where("counter", "=", expectedCounter)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async createChallenge(idHash: string, c: Challenge, now: number): Promise<void> {
    await this.db
      .insertInto("webauthn_challenges")
      .values({
        id_hash: idHash,
        challenge: c.challenge,
        purpose: c.purpose,
        user_id: c.userId,
        bound_to: c.boundTo,
        for_identifier: c.forIdentifier ? 1 : 0,
        expires_at: c.expiresAt,
        created_at: now,
      })
      .execute();
  }

  /**
   * Marks an unused, unexpired challenge of this purpose and binding used and answers it; only
   * one caller ever gets it (compare-and-set), however many race with the same id.
   */
  async consumeChallenge(
    idHash: string,
    purpose: ChallengePurpose,
    boundTo: string | null,
    now: number,
  ): Promise<Pick<Challenge, "challenge" | "userId" | "forIdentifier"> | undefined> {
    const row = await this.db
      .updateTable("webauthn_challenges")
      .set({ used_at: now })
      .where("id_hash", "=", idHash)
      .where("purpose", "=", purpose)
      .where("bound_to", boundTo === null ? "is" : "=", boundTo)
      .where("used_at", "is", null)
      .where("expires_at", ">", now)
      .returning(["challenge", "user_id", "for_identifier"])
      .executeTakeFirst();
    return (
      row && {
        challenge: row.challenge,
        userId: row.user_id,
        forIdentifier: row.for_identifier === 1,
      }
    );
  }

  async purgeChallengesBefore(cutoff: number): Promise<number> {
    const result = await this.db
      .deleteFrom("webauthn_challenges")
      .where("expires_at", "<", cutoff)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}

function toPasskey(row: Selectable<WebauthnCredentialsTable>): Passkey {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    publicKey: row.public_key,
    counter: row.counter,
    transports: JSON.parse(row.transports) as string[],
    deviceType: row.device_type === "multiDevice" ? "multiDevice" : "singleDevice",
    backedUp: row.backed_up === 1,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}
