import type { Kysely } from "kysely";
import { uuidv7 } from "../domain/ids.js";
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

export class AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Several events in one INSERT, so one transaction (and one WAL commit) carries them all. */
  async recordMany(events: Array<{ event: AuditEvent; at: number }>): Promise<void> {
    if (events.length === 0) return;
    await this.db
      .insertInto("audit_events")
      .values(
        events.map(({ event, at }) => ({
          id: uuidv7(at),
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

  listForUser(userId: string) {
    return this.db
      .selectFrom("audit_events")
      .selectAll()
      .where("user_id", "=", userId)
      .orderBy("id", "desc")
      .execute();
  }
}
