import type { Kysely } from "kysely";
import { monotonicUuidv7 } from "../domain/ids.js";
import type { Database } from "./schema.js";

export type AuditType =
  | "setup"
  | "register"
  | "login_succeeded"
  | "login_failed"
  | "login_rate_limited"
  | "logout"
  | "logout_all"
  | "session_revoked"
  | "refresh_token_reused"
  | "password_rehashed"
  | "keys_rotated"
  | "mfa_enabled"
  | "mfa_disabled"
  | "mfa_failed"
  | "mfa_rate_limited"
  | "backup_codes_regenerated"
  | "step_up_succeeded"
  | "step_up_failed"
  | "password_changed"
  | "api_token_created"
  | "api_token_deleted"
  | "guest_created"
  | "guest_upgraded"
  | "account_deleted"
  | "email_verified"
  | "email_changed"
  | "password_reset_requested"
  | "password_reset"
  | "magic_link_requested"
  | "backup_code_used"
  | "admin_user_updated"
  | "admin_user_deleted"
  | "admin_sessions_revoked"
  | "identity_linked"
  | "identity_unlinked"
  | "oauth_failed"
  | "passkey_registered"
  | "passkey_renamed"
  | "passkey_deleted";

export interface AuditEvent {
  type: AuditType;
  userId?: string | null;
  sessionId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  detail?: Record<string, unknown>;
}

export interface AuditQuery {
  userId?: string;
  type?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, exclusive. */
  until?: number;
  /** Only ids below this one (the last id of the previous page). */
  before?: string;
  limit: number;
}

export class AuditStore {
  /** Events of one node list in the order they happened, even within a millisecond. */
  private static readonly nextId = monotonicUuidv7();

  constructor(private readonly db: Kysely<Database>) {}

  /** Several events in one INSERT, so one transaction (and one WAL commit) carries them all. */
  async recordMany(events: Array<{ event: AuditEvent; at: number }>): Promise<void> {
    if (events.length === 0) return;
    await this.db
      .insertInto("audit_events")
      .values(
        events.map(({ event, at }) => ({
          id: AuditStore.nextId(at),
          type: event.type,
          user_id: event.userId ?? null,
          session_id: event.sessionId ?? null,
          ip: event.ip ?? null,
          user_agent: event.userAgent ?? null,
          detail: JSON.stringify(event.detail ?? {}),
          created_at: at,
        })),
      )
      .execute();
  }

  /** Newest first (ids are UUIDv7), keyset-paged by id. */
  list(query: AuditQuery) {
    let q = this.db.selectFrom("audit_events").selectAll().orderBy("id", "desc").limit(query.limit);
    if (query.userId !== undefined) q = q.where("user_id", "=", query.userId);
    if (query.type !== undefined) q = q.where("type", "=", query.type);
    if (query.since !== undefined) q = q.where("created_at", ">=", query.since);
    if (query.until !== undefined) q = q.where("created_at", "<", query.until);
    if (query.before !== undefined) q = q.where("id", "<", query.before);
    return q.execute();
  }

  /** Deletes up to `limit` events older than `before` (retention); returns how many. */
  async purgeBefore(before: number, limit: number): Promise<number> {
    const result = await this.db
      .deleteFrom("audit_events")
      .where("id", "in", (eb) =>
        eb.selectFrom("audit_events").select("id").where("created_at", "<", before).limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  listForUser(userId: string) {
    return this.db
      .selectFrom("audit_events")
      .selectAll()
      .where("user_id", "=", userId)
      .orderBy("id", "desc")
      .execute();
  }
}
