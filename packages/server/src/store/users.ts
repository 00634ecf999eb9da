import type { Kysely, Selectable } from "kysely";
import type { User } from "../domain/user.js";
import type { Database, UsersTable } from "./schema.js";

export type NewUser = Pick<User, "id" | "email" | "username" | "passwordHash" | "role"> &
  Partial<Pick<User, "emailVerified" | "tier" | "guest">>;

export class UserStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(user: NewUser, now: number): Promise<User> {
    const row = await this.db
      .insertInto("users")
      .values({
        id: user.id,
        email: user.email,
        email_verified: user.emailVerified ? 1 : 0,
        username: user.username,
        username_key: user.username?.toLowerCase() ?? null,
        password_hash: user.passwordHash,
        role: user.role,
        tier: user.tier ?? "free",
        guest: user.guest ? 1 : 0,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toUser(row);
  }

  async findById(id: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom("users")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return row && toUser(row);
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom("users")
      .selectAll()
      .where("email", "=", email)
      .executeTakeFirst();
    return row && toUser(row);
  }

  async findByUsernameKey(key: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom("users")
      .selectAll()
      .where("username_key", "=", key)
      .executeTakeFirst();
    return row && toUser(row);
  }

  async any(): Promise<boolean> {
    const row = await this.db.selectFrom("users").select("id").limit(1).executeTakeFirst();
    return row !== undefined;
  }

  async setPasswordHash(id: string, passwordHash: string, now: number): Promise<void> {
    await this.db
      .updateTable("users")
      .set({ password_hash: passwordHash, updated_at: now })
      .where("id", "=", id)
      .execute();
  }
}

export function toUser(row: Selectable<UsersTable>): User {
  return {
    id: row.id,
    email: row.email,
    emailVerified: row.email_verified === 1,
    username: row.username,
    passwordHash: row.password_hash,
    role: row.role,
    tier: row.tier,
    subscriptionStatus: row.subscription_status,
    guest: row.guest === 1,
    disabled: row.disabled === 1,
    allowedIps: JSON.parse(row.allowed_ips) as string[],
    sessionDurationMinutes: row.session_duration_minutes,
    singleSession: row.single_session === 1,
    screenLockMinutes: row.screen_lock_minutes,
    mfaEnabled: row.mfa_enabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
