import { type Expression, type Kysely, type Selectable, type SqlBool, sql } from "kysely";
import type { LinkedIdentity, User } from "../domain/user.js";
import type { Dialect } from "./db.js";
import { IdentityStore } from "./identities.js";
import { prepared } from "./prepared.js";
import type { Database, UsersTable } from "./schema.js";
import { sealClearColumn } from "./seal-clear.js";

export type NewUser = Pick<User, "id" | "email" | "username" | "passwordHash" | "role"> &
  Partial<Pick<User, "emailVerified" | "tier" | "guest">>;

/** Fields a user may change on their own profile (PATCH /users/me). */
export interface ProfileChange {
  username?: string;
  email?: string;
  allowedIps?: string[];
  sessionDurationMinutes?: number | null;
  singleSession?: boolean;
  screenLockMinutes?: number | null;
}

/** What an admin may change on any account (PATCH /admin/users/:id). */
export interface AdminChange {
  role?: string;
  tier?: string;
  subscriptionStatus?: string;
  disabled?: boolean;
}

export interface UserQuery {
  /** Case-insensitive substring of the email or the username; for guests, guest_email. */
  search?: string;
  /** Only ids below this one (the last id of the previous page). */
  before?: string;
  limit: number;
}

const sessionPolicyOf = prepared((db, v: { id: string }) =>
  db.selectFrom("users").select(["session_epoch", "single_session"]).where("id", "=", v.id),
);
const sessionPolicyOfShared = prepared((db, v: { id: string }) =>
  db
    .selectFrom("users")
    .select(["session_epoch", "single_session"])
    .where("id", "=", v.id)
    .forShare(),
);

export class UserStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  /**
   * The user's session epoch and singleSession as committed. On PostgreSQL the read waits
   * out a transaction that is changing them (FOR SHARE), so it never returns a value a
   * reset or a profile change is replacing.
   */
  async sessionPolicy(
    id: string,
  ): Promise<Pick<User, "sessionEpoch" | "singleSession"> | undefined> {
    const read = this.dialect === "postgres" ? sessionPolicyOfShared : sessionPolicyOf;
    const [row] = await read(this.db, { id });
    return row && { sessionEpoch: row.session_epoch, singleSession: row.single_session === 1 };
  }

  /** Every session of the user is about to end: sign-ins that read the account before keep none. */
  async moveSessionEpoch(id: string): Promise<void> {
    await this.db
      .updateTable("users")
      .set((eb) => ({ session_epoch: eb("session_epoch", "+", 1) }))
      .where("id", "=", id)
      .execute();
  }

  async create(user: NewUser, now: number): Promise<User> {
    const row = await this.db
      .insertInto("users")
      .values({
        id: user.id,
        email: user.email,
        email_verified: user.emailVerified ? 1 : 0,
        email_ever_verified: user.emailVerified ? 1 : 0,
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
    return readUser(this.db, "id", id);
  }

  async findByEmail(email: string): Promise<User | undefined> {
    return readUser(this.db, "email", email);
  }

  async findByUsernameKey(key: string): Promise<User | undefined> {
    return readUser(this.db, "username_key", key);
  }

  async any(): Promise<boolean> {
    const row = await this.db.selectFrom("users").select("id").limit(1).executeTakeFirst();
    return row !== undefined;
  }

  /**
   * A guest: tier `guest`, no password; the username is shown but takes no
   * username_key, and the email goes to guest_email, so a guest blocks no real account.
   */
  async createGuest(
    guest: { id: string; username: string; guestEmail: string | null },
    now: number,
  ): Promise<User> {
    const row = await this.db
      .insertInto("users")
      .values({
        id: guest.id,
        email: null,
        username: guest.username,
        username_key: null,
        password_hash: null,
        role: "user",
        tier: "guest",
        guest: 1,
        guest_email: guest.guestEmail,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toUser(row);
  }

  async findGuestByEmail(guestEmail: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom("users")
      .selectAll()
      .where("guest_email", "=", guestEmail)
      .where("guest", "=", 1)
      .executeTakeFirst();
    return row && toUser(row);
  }

  /**
   * Turns a guest into a full account with the same id (compare-and-set on `guest`);
   * undefined when it is no longer a guest. Unique violations surface to the caller.
   */
  async upgradeGuest(
    id: string,
    account: { email: string; passwordHash: string; username: string | null },
    now: number,
  ): Promise<User | undefined> {
    const row = await this.db
      .updateTable("users")
      .set({
        email: account.email,
        email_verified: 0,
        password_hash: account.passwordHash,
        username: account.username,
        username_key: account.username?.toLowerCase() ?? null,
        guest: 0,
        guest_email: null,
        tier: "free",
        updated_at: now,
      })
      .where("id", "=", id)
      .where("guest", "=", 1)
      .returningAll()
      .executeTakeFirst();
    return row && toUser(row);
  }

  /**
   * Applies a profile change; unique violations (email, username) surface to the caller.
   * Undefined when the user is gone (deleted while the request ran).
   */
  async update(id: string, change: ProfileChange, now: number): Promise<User | undefined> {
    const row = await this.db
      .updateTable("users")
      .set({
        ...(change.username !== undefined
          ? { username: change.username, username_key: change.username.toLowerCase() }
          : {}),
        ...(change.email !== undefined ? { email: change.email, email_verified: 0 } : {}),
        ...(change.allowedIps !== undefined
          ? { allowed_ips: JSON.stringify(change.allowedIps) }
          : {}),
        ...(change.sessionDurationMinutes !== undefined
          ? { session_duration_minutes: change.sessionDurationMinutes }
          : {}),
        ...(change.singleSession !== undefined
          ? { single_session: change.singleSession ? 1 : 0 }
          : {}),
        ...(change.screenLockMinutes !== undefined
          ? { screen_lock_minutes: change.screenLockMinutes }
          : {}),
        updated_at: now,
      })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
    return row && toUser(row, await new IdentityStore(this.db).listForUser(id));
  }

  /** Deletes the account; sessions, API tokens and backup codes go with it (ON DELETE CASCADE). */
  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom("users").where("id", "=", id).executeTakeFirst();
    return result.numDeletedRows > 0n;
  }

  /**
   * Deletes up to `limit` guests made before `before` that can never sign in again: no
   * email to come back with, no session left (ended ones are purged a day after their
   * end), and no unexpired API token, provider identity or passkey. Returns how many.
   */
  async purgeUnreachableGuests(before: number, limit: number): Promise<number> {
    const result = await this.db
      .deleteFrom("users")
      .where("id", "in", (eb) =>
        eb
          .selectFrom("users as u")
          .select("u.id")
          // A literal, so that SQLite may use the partial index (WHERE guest = 1).
          .where("u.guest", "=", sql.lit(1))
          .where("u.created_at", "<", before)
          .where("u.guest_email", "is", null)
          .where(({ not, exists, selectFrom }) =>
            not(
              exists(
                selectFrom("sessions")
                  .select("user_id")
                  .whereRef("sessions.user_id", "=", "u.id")
                  .unionAll(
                    // A token that expired before the cut-off is no way in: an expiry is never extended.
                    selectFrom("api_tokens")
                      .select("user_id")
                      .whereRef("api_tokens.user_id", "=", "u.id")
                      .where((t) =>
                        t.or([
                          t("api_tokens.expires_at", "is", null),
                          t("api_tokens.expires_at", ">=", before),
                        ]),
                      ),
                  )
                  .unionAll(
                    selectFrom("identities")
                      .select("user_id")
                      .whereRef("identities.user_id", "=", "u.id"),
                  )
                  .unionAll(
                    selectFrom("webauthn_credentials")
                      .select("user_id")
                      .whereRef("webauthn_credentials.user_id", "=", "u.id"),
                  ),
              ),
            ),
          )
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Newest first (ids are UUIDv7), keyset-paged by id. */
  async list(query: UserQuery): Promise<User[]> {
    let q = this.db.selectFrom("users").selectAll().orderBy("id", "desc").limit(query.limit);
    if (query.before) q = q.where("id", "<", query.before);
    if (query.search) {
      // Emails, guest emails and username keys are stored lower-cased; `\` escapes
      // LIKE's wildcards. A guest's username has no key (it reserves nothing), so it is
      // lower-cased here (usernames are ASCII, which lower() folds alike on both databases).
      const pattern = `%${query.search.toLowerCase().replace(/[\\%_]/g, "\\$&")}%`;
      q = q.where((eb) => {
        const like = (value: Expression<string | null>) =>
          sql<SqlBool>`${value} like ${pattern} escape '\\'`;
        return eb.or([
          like(eb.ref("email")),
          like(eb.ref("username_key")),
          like(eb.ref("guest_email")),
          eb.and([
            eb("username_key", "is", null),
            like(sql<string | null>`lower(${eb.ref("username")})`),
          ]),
        ]);
      });
    }
    const rows = await q.execute();
    const identities = await new IdentityStore(this.db).listForUsers(rows.map((r) => r.id));
    return rows.map((row) => toUser(row, identities.get(row.id)));
  }

  /** Applies an admin's change; undefined when there is no such user. */
  async adminUpdate(id: string, change: AdminChange, now: number): Promise<User | undefined> {
    const row = await this.db
      .updateTable("users")
      .set({
        ...(change.role !== undefined ? { role: change.role } : {}),
        ...(change.tier !== undefined ? { tier: change.tier } : {}),
        ...(change.subscriptionStatus !== undefined
          ? { subscription_status: change.subscriptionStatus }
          : {}),
        ...(change.disabled !== undefined ? { disabled: change.disabled ? 1 : 0 } : {}),
        updated_at: now,
      })
      .where("id", "=", id)
      .returningAll()
      .executeTakeFirst();
    return row && toUser(row, await new IdentityStore(this.db).listForUser(id));
  }

  /**
   * Ids of the enabled admins. With `lock` (PostgreSQL, inside a transaction) their rows
   * stay locked until it ends, so two admins demoting each other at once cannot both
   * pass the "another admin remains" check; SQLite serialises writers anyway.
   */
  async enabledAdminIds(lock: boolean): Promise<string[]> {
    let q = this.db
      .selectFrom("users")
      .select("id")
      .where("role", "=", "admin")
      .where("disabled", "=", 0);
    if (lock) q = q.forUpdate();
    return (await q.execute()).map((r) => r.id);
  }

  /** Sets the hash only while `expected` is still the account's; false when it is not. */
  async replacePasswordHash(
    id: string,
    expected: string,
    passwordHash: string,
    now: number,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable("users")
      .set({ password_hash: passwordHash, updated_at: now })
      .where("id", "=", id)
      .where("password_hash", "=", expected)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  async setPasswordHash(id: string, passwordHash: string, now: number): Promise<void> {
    await this.db
      .updateTable("users")
      .set({ password_hash: passwordHash, updated_at: now })
      .where("id", "=", id)
      .execute();
  }

  /** Verifies `email` only while it is still the account's address (a change may have raced). */
  async markEmailVerified(id: string, email: string, now: number): Promise<void> {
    await this.db
      .updateTable("users")
      .set({ email_verified: 1, email_ever_verified: 1, updated_at: now })
      .where("id", "=", id)
      .where("email", "=", email)
      .execute();
  }

  /** The stored (possibly sealed) TOTP secret, kept out of `User` so no cache ever holds it. */
  async totpSecret(id: string): Promise<string | null> {
    const row = await this.db
      .selectFrom("users")
      .select("totp_secret")
      .where("id", "=", id)
      .executeTakeFirst();
    return row?.totp_secret ?? null;
  }

  /** Seals each TOTP secret stored in clear; how many were. */
  sealClearTotpSecrets(seal: (clear: string) => string): Promise<number> {
    return sealClearColumn(this.db, "users", "id", "totp_secret", seal);
  }

  /** A new secret awaiting its first code; false when MFA is already on. */
  async setPendingTotpSecret(id: string, secret: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable("users")
      .set({ totp_secret: secret, updated_at: now })
      .where("id", "=", id)
      .where("mfa_enabled", "=", 0)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Turns MFA on for the pending secret it was verified against (compare-and-set on it). */
  async enableMfa(id: string, secret: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable("users")
      .set({ mfa_enabled: 1, updated_at: now })
      .where("id", "=", id)
      .where("mfa_enabled", "=", 0)
      .where("totp_secret", "=", secret)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** MFA off and the secret forgotten (a pending one too). */
  async disableMfa(id: string, now: number): Promise<void> {
    await this.db
      .updateTable("users")
      .set({ mfa_enabled: 0, totp_secret: null, updated_at: now })
      .where("id", "=", id)
      .execute();
  }
}

/** `identities` defaults to none: right for a row just created, or read without them. */
export function toUser(row: Selectable<UsersTable>, identities: LinkedIdentity[] = []): User {
  return {
    id: row.id,
    email: row.email,
    emailVerified: row.email_verified === 1,
    guestEmail: row.guest_email,
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
    identities,
    sessionEpoch: row.session_epoch,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
/**
 * A user row with its identities in one statement (LEFT JOIN: one row per identity,
 * or one with nulls), so reads that render a user, the hot session read among them,
 * cost no extra round trip. One prepared query per column it can go by.
 */
function userRowsBy(column: "id" | "email" | "username_key") {
  return prepared((db, v: { value: string }) =>
    db
      .selectFrom("users")
      .leftJoin("identities", "identities.user_id", "users.id")
      .selectAll("users")
      .select([
        "identities.provider as identity_provider",
        "identities.subject as identity_subject",
        "identities.email as identity_email",
        "identities.linked_at as identity_linked_at",
      ])
      .where(`users.${column}`, "=", v.value)
      .orderBy("identities.linked_at")
      .orderBy("identities.provider"),
  );
}

const userRows = {
  id: userRowsBy("id"),
  email: userRowsBy("email"),
  username_key: userRowsBy("username_key"),
};

export async function readUser(
  db: Kysely<Database>,
  column: "id" | "email" | "username_key",
  value: string,
): Promise<User | undefined> {
  const rows = await userRows[column](db, { value });
  const first = rows[0];
  if (!first) return undefined;
  const identities: LinkedIdentity[] = [];
  for (const row of rows) {
    if (row.identity_provider === null || row.identity_subject === null) continue;
    identities.push({
      provider: row.identity_provider,
      subject: row.identity_subject,
      email: row.identity_email,
      linkedAt: row.identity_linked_at ?? 0,
    });
  }
  return toUser(first, identities);
}
