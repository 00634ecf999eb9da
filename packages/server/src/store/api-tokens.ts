import type { Kysely, Selectable } from "kysely";
import { type ApiToken, knownScopes } from "../domain/api-token.js";
import type { User } from "../domain/user.js";
import type { ApiTokensTable, Database } from "./schema.js";
import { readUser } from "./users.js";

export type NewApiToken = Omit<ApiToken, "lastUsedAt" | "createdAt">;

/** What the auth guard needs per API-token request: the token and its user. */
export interface ApiTokenContext {
  token: ApiToken;
  user: User;
}

export class ApiTokenStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(t: NewApiToken, now: number): Promise<ApiToken> {
    const row = await this.db
      .insertInto("api_tokens")
      .values({
        id: t.id,
        user_id: t.userId,
        name: t.name,
        prefix: t.prefix,
        token_hash: t.tokenHash,
        scopes: JSON.stringify(t.scopes),
        expires_at: t.expiresAt,
        created_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toApiToken(row);
  }

  /** The user's tokens, newest first, expired ones included (so they can be seen and deleted). */
  async listForUser(userId: string): Promise<ApiToken[]> {
    const rows = await this.db
      .selectFrom("api_tokens")
      .selectAll()
      .where("user_id", "=", userId)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .execute();
    return rows.map(toApiToken);
  }

  /** By the SHA-256 of the presented secret (unique index); two primary-key-speed reads. */
  async findContextByHash(tokenHash: string): Promise<ApiTokenContext | undefined> {
    const row = await this.db
      .selectFrom("api_tokens")
      .selectAll()
      .where("token_hash", "=", tokenHash)
      .executeTakeFirst();
    if (!row) return undefined;
    const user = await readUser(this.db, "id", row.user_id);
    return user && { token: toApiToken(row), user };
  }

  /** Deletes one of the user's tokens; its hash (to evict caches), or undefined when none matched. */
  async delete(id: string, userId: string): Promise<string | undefined> {
    const row = await this.db
      .deleteFrom("api_tokens")
      .where("id", "=", id)
      .where("user_id", "=", userId)
      .returning("token_hash")
      .executeTakeFirst();
    return row?.token_hash;
  }

  /** Deletes every token of the user; how many there were. */
  async deleteForUser(userId: string): Promise<number> {
    const result = await this.db
      .deleteFrom("api_tokens")
      .where("user_id", "=", userId)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Records a use unless one was recorded within `intervalMs` (by any node). */
  async touch(id: string, now: number, intervalMs: number): Promise<void> {
    await this.db
      .updateTable("api_tokens")
      .set({ last_used_at: now })
      .where("id", "=", id)
      .where((eb) =>
        eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<=", now - intervalMs)]),
      )
      .execute();
  }
}

function toApiToken(row: Selectable<ApiTokensTable>): ApiToken {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    prefix: row.prefix,
    tokenHash: row.token_hash,
    scopes: knownScopes(JSON.parse(row.scopes) as unknown[]),
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    createdAt: row.created_at,
  };
}
