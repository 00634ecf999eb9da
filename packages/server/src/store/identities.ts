import type { Kysely } from "kysely";
import type { LinkedIdentity } from "../domain/user.js";
import type { Database } from "./schema.js";

export interface IdentityOwner extends LinkedIdentity {
  userId: string;
}

export interface NewIdentity {
  provider: string;
  subject: string;
  userId: string;
  email: string | null;
  /** Already sealed; null when the provider's tokens are not kept. */
  tokens: string | null;
}

export interface OAuthCode {
  userId: string;
  provider: string;
  ip: string | null;
  userAgent: string | null;
  /** The user's session epoch when it was handed: a later end of all sessions voids it. */
  sessionEpoch: number;
}

export class IdentityStore {
  constructor(private readonly db: Kysely<Database>) {}

  async find(provider: string, subject: string): Promise<IdentityOwner | undefined> {
    const row = await this.db
      .selectFrom("identities")
      .select(["provider", "subject", "user_id", "email", "linked_at"])
      .where("provider", "=", provider)
      .where("subject", "=", subject)
      .executeTakeFirst();
    return row && { ...toIdentity(row), userId: row.user_id };
  }

  /** Unique violations ((provider, subject) or (user, provider)) surface to the caller. */
  async link(identity: NewIdentity, now: number): Promise<void> {
    await this.db
      .insertInto("identities")
      .values({
        provider: identity.provider,
        subject: identity.subject,
        user_id: identity.userId,
        email: identity.email,
        linked_at: now,
        tokens: identity.tokens,
      })
      .execute();
  }

  /** What the provider says now: its current email, and fresh tokens when they are kept. */
  async refresh(
    provider: string,
    subject: string,
    change: { email: string | null; tokens: string | null },
  ): Promise<void> {
    await this.db
      .updateTable("identities")
      .set({ email: change.email, ...(change.tokens === null ? {} : { tokens: change.tokens }) })
      .where("provider", "=", provider)
      .where("subject", "=", subject)
      .execute();
  }

  async listForUser(userId: string): Promise<LinkedIdentity[]> {
    const rows = await this.db
      .selectFrom("identities")
      .select(["provider", "subject", "email", "linked_at"])
      .where("user_id", "=", userId)
      .orderBy("linked_at")
      .orderBy("provider")
      .execute();
    return rows.map(toIdentity);
  }

  /** The identities of several users at once (a page of the admin list), by user id. */
  async listForUsers(userIds: string[]): Promise<Map<string, LinkedIdentity[]>> {
    const byUser = new Map<string, LinkedIdentity[]>();
    if (userIds.length === 0) return byUser;
    const rows = await this.db
      .selectFrom("identities")
      .select(["user_id", "provider", "subject", "email", "linked_at"])
      .where("user_id", "in", userIds)
      .orderBy("linked_at")
      .orderBy("provider")
      .execute();
    for (const row of rows) {
      const list = byUser.get(row.user_id) ?? [];
      list.push(toIdentity(row));
      byUser.set(row.user_id, list);
    }
    return byUser;
  }

  /**
   * Removes the user's identity at `provider` unless it is their last way to sign in
   * (no password, no other identity, no passkey). Run it in a transaction: the first statement
   * locks the user row on PostgreSQL, so two unlinks of one user cannot both pass the
   * check (SQLite runs one write transaction at a time anyway).
   */
  async unlinkUnlessLast(
    userId: string,
    provider: string,
    now: number,
  ): Promise<"unlinked" | "not_found" | "last"> {
    const user = await this.db
      .updateTable("users")
      .set({ updated_at: now })
      .where("id", "=", userId)
      .returning("password_hash")
      .executeTakeFirst();
    if (!user) return "not_found";
    const identities = await this.listForUser(userId);
    if (!identities.some((i) => i.provider === provider)) return "not_found";
    const passkeys = await this.db
      .selectFrom("webauthn_credentials")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("user_id", "=", userId)
      .executeTakeFirstOrThrow();
    const others = identities.length - 1 + Number(passkeys.n);
    if (user.password_hash === null && others === 0) return "last";
    await this.db
      .deleteFrom("identities")
      .where("user_id", "=", userId)
      .where("provider", "=", provider)
      .execute();
    return "unlinked";
  }

  /**
   * The owner of an address claims the account that carries it while it was never
   * proven, not even an earlier address of it (a provider that vouches for it, or a link
   * opened from the mailbox): whoever set its password, passkeys or API tokens, or linked
   * a provider to it (one that did not vouch for the address), may have pre-registered
   * someone else's address, so those go (with the exchange codes such a provider sign-in
   * was handed) and the email counts as verified from now on. With `keepMfa` the TOTP
   * secret and backup codes stay: a second factor opens nothing alone, and a mailbox alone
   * must never get past it. Compare-and-set; false when the address is verified (or was
   * meanwhile), or an earlier one was: that account is its prover's, and stays whole.
   */
  async resetUnprovenAccount(
    userId: string,
    now: number,
    options: { keepMfa?: boolean } = {},
  ): Promise<boolean> {
    const mfa = options.keepMfa ? {} : { totp_secret: null, mfa_enabled: 0 };
    const result = await this.db
      .updateTable("users")
      .set({
        email_verified: 1,
        email_ever_verified: 1,
        password_hash: null,
        ...mfa,
        updated_at: now,
      })
      .where("id", "=", userId)
      .where("email_verified", "=", 0)
      .where("email_ever_verified", "=", 0)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) return false;
    if (!options.keepMfa) {
      await this.db.deleteFrom("backup_codes").where("user_id", "=", userId).execute();
    }
    await this.db.deleteFrom("api_tokens").where("user_id", "=", userId).execute();
    await this.db.deleteFrom("webauthn_credentials").where("user_id", "=", userId).execute();
    await this.db.deleteFrom("identities").where("user_id", "=", userId).execute();
    // A code a removed identity was handed (body delivery, 60 s) would start a session after it.
    await this.db.deleteFrom("oauth_codes").where("user_id", "=", userId).execute();
    return true;
  }

  async saveCode(codeHash: string, code: OAuthCode, expiresAt: number): Promise<void> {
    await this.db
      .insertInto("oauth_codes")
      .values({
        code_hash: codeHash,
        user_id: code.userId,
        provider: code.provider,
        ip: code.ip,
        user_agent: code.userAgent,
        expires_at: expiresAt,
        session_epoch: code.sessionEpoch,
      })
      .execute();
  }

  /** Single use: one DELETE … RETURNING, so of two concurrent exchanges only one gets the row. */
  async takeCode(codeHash: string, now: number): Promise<OAuthCode | undefined> {
    const row = await this.db
      .deleteFrom("oauth_codes")
      .where("code_hash", "=", codeHash)
      .returningAll()
      .executeTakeFirst();
    if (!row || row.expires_at <= now) return undefined;
    return {
      userId: row.user_id,
      provider: row.provider,
      ip: row.ip,
      userAgent: row.user_agent,
      sessionEpoch: row.session_epoch,
    };
  }

  async purgeCodesBefore(now: number): Promise<void> {
    await this.db.deleteFrom("oauth_codes").where("expires_at", "<=", now).execute();
  }
}

const toIdentity = (row: {
  provider: string;
  subject: string;
  email: string | null;
  linked_at: number;
}): LinkedIdentity => ({
  provider: row.provider,
  subject: row.subject,
  email: row.email,
  linkedAt: row.linked_at,
});
