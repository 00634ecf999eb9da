import { type Kysely, type Selectable, sql } from "kysely";
import { type RevokeReason, type Session, tokensCutoff } from "../domain/session.js";
import type { User } from "../domain/user.js";
import { prepared } from "./prepared.js";
import type { Database, SessionsTable } from "./schema.js";
import { readUser } from "./users.js";

export type NewSession = Pick<
  Session,
  | "id"
  | "userId"
  | "absoluteExpiresAt"
  | "ip"
  | "userAgent"
  | "browser"
  | "os"
  | "amr"
  | "rememberMe"
> & { refreshHash: string };

/** What the auth guard needs per request: the session and its user, in one read. */
export interface SessionContext {
  session: Session;
  user: User;
}

export type RotateResult =
  | { ok: true; session: Session }
  | { ok: false; session: Session | undefined };

/** A new session's row, in the shape the prepared insert binds. */
type SessionInsert = Omit<NewSession, "amr" | "rememberMe"> & {
  amr: string;
  rememberMe: 0 | 1;
  now: number;
};

const insertSession = prepared((db, v: SessionInsert) =>
  db
    .insertInto("sessions")
    .values({
      id: v.id,
      user_id: v.userId,
      refresh_hash: v.refreshHash,
      generation: 0,
      absolute_expires_at: v.absoluteExpiresAt,
      created_at: v.now,
      last_seen_at: v.now,
      ip: v.ip,
      user_agent: v.userAgent,
      browser: v.browser,
      os: v.os,
      amr: v.amr,
      remember_me: v.rememberMe,
    })
    .returningAll(),
);

/**
 * On the sign-in path. LIMIT is a literal: SQLite (3.53) plans with a bound LIMIT's value,
 * so it prepared a `LIMIT ?` statement again on every run, two thirds of this query's
 * time under login load (perf, bench/RESULTS.md).
 */
const sessionFromIp = prepared((db, v: { userId: string; ip: string }) =>
  db
    .selectFrom("sessions")
    .select("id")
    .where("user_id", "=", v.userId)
    .where("ip", "=", v.ip)
    .where((eb) =>
      eb.or([eb("revoked_reason", "is", null), eb("revoked_reason", "!=", "email_claimed")]),
    )
    .limit(sql.lit(1)),
);

const sessionById = prepared((db, v: { id: string }) =>
  db.selectFrom("sessions").selectAll().where("id", "=", v.id),
);

interface Rotation {
  id: string;
  /** The current refresh token's hash, or the generation, that must still hold. */
  expected: string | number;
  successorHash: string;
  now: number;
  /** A reissue's floor for access tokens' `iat` (epoch ms, whole seconds). */
  tokensValidAfter?: number;
}

/**
 * The race-free rotation of DESIGN.md, one compare-and-set: a live session moves to its
 * next generation only while `expected` still holds. A refresh (by the presented token)
 * opens the grace window; a reissue (by generation, after a password change) does not,
 * and refuses every access token issued before it.
 */
function rotation(by: "refresh_hash" | "generation") {
  const refresh = by === "refresh_hash";
  return prepared((db, v: Rotation) =>
    db
      .updateTable("sessions")
      .set((eb) => ({
        previous_refresh_hash: eb.ref("refresh_hash"),
        refresh_hash: v.successorHash,
        generation: eb("generation", "+", 1),
        ...(refresh
          ? { rotated_at: v.now }
          : { rotated_at: null, tokens_valid_after: v.tokensValidAfter }),
      }))
      .where("id", "=", v.id)
      .where(by, "=", v.expected)
      .where("revoked_at", "is", null)
      .where("absolute_expires_at", ">", v.now)
      .returningAll(),
  );
}

const rotateByToken = rotation("refresh_hash");
const rotateByGeneration = rotation("generation");

export class SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(s: NewSession, now: number): Promise<Session> {
    const [row] = await insertSession(this.db, {
      ...s,
      amr: JSON.stringify(s.amr),
      rememberMe: s.rememberMe ? 1 : 0,
      now,
    });
    if (!row) throw new Error("session insert returned no row");
    return toSession(row);
  }

  async findById(id: string): Promise<Session | undefined> {
    const [row] = await sessionById(this.db, { id });
    return row && toSession(row);
  }

  /**
   * Two primary-key reads (the second brings the user's identities along); the guard
   * caches the result, so this runs about once a second per session.
   */
  async findContext(id: string): Promise<SessionContext | undefined> {
    const session = await this.findById(id);
    if (!session) return undefined;
    const user = await readUser(this.db, "id", session.userId);
    return user && { session, user };
  }

  /**
   * The race-free rotation of DESIGN.md: one compare-and-set. Exactly one of any
   * number of concurrent callers presenting the same token wins.
   */
  async rotate(
    id: string,
    presentedHash: string,
    successorHash: string,
    now: number,
  ): Promise<RotateResult> {
    const [row] = await rotateByToken(this.db, {
      id,
      expected: presentedHash,
      successorHash,
      now,
    });
    if (row) return { ok: true, session: toSession(row) };
    return { ok: false, session: await this.findById(id) };
  }

  /**
   * Rotation without a presented token (a password change reissues this session's
   * tokens): the same compare-and-set, on the generation the caller read. Access
   * tokens issued before `now`, even in the same second, stop working (tokensCutoff).
   * Undefined when a refresh won the race.
   */
  async advance(
    id: string,
    generation: number,
    successorHash: string,
    now: number,
  ): Promise<Session | undefined> {
    // rotated_at stays null: the grace window is for two tabs racing, never for a
    // password change, or the old token could fetch the new one for ten seconds.
    const [row] = await rotateByGeneration(this.db, {
      id,
      expected: generation,
      successorHash,
      now,
      tokensValidAfter: tokensCutoff(now),
    });
    return row && toSession(row);
  }

  /** Returns true when this call revoked it (false: unknown or already revoked). */
  async revoke(id: string, reason: RevokeReason, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable("sessions")
      .set({ revoked_at: now, revoked_reason: reason })
      .where("id", "=", id)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    return result.numUpdatedRows > 0n;
  }

  /** Revokes every live session of a user (but `keep`); returns the revoked ids. */
  async revokeAllForUser(
    userId: string,
    reason: RevokeReason,
    now: number,
    keep?: string,
  ): Promise<string[]> {
    let query = this.db
      .updateTable("sessions")
      .set({ revoked_at: now, revoked_reason: reason })
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null);
    if (keep) query = query.where("id", "!=", keep);
    const rows = await query.returning("id").execute();
    return rows.map((r) => r.id);
  }

  /** Revokes the user's sessions created before `sessionId` (UUIDv7: in time order). */
  async revokeOlderThan(userId: string, sessionId: string, now: number): Promise<string[]> {
    const rows = await this.db
      .updateTable("sessions")
      .set({ revoked_at: now, revoked_reason: "single_session" })
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("id", "<", sessionId)
      .returning("id")
      .execute();
    return rows.map((r) => r.id);
  }

  async listActive(userId: string, now: number): Promise<Session[]> {
    const rows = await this.db
      .selectFrom("sessions")
      .selectAll()
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .where("absolute_expires_at", ">", now)
      .orderBy("created_at", "desc")
      .execute();
    return rows.map(toSession);
  }

  /**
   * Whether the user has a session on record (live, or ended and not yet purged) begun
   * from `ip`; not one a claim of the address ended, which was whoever squatted it.
   */
  async existsFrom(userId: string, ip: string): Promise<boolean> {
    const [row] = await sessionFromIp(this.db, { userId, ip });
    return row !== undefined;
  }

  /** Browser and OS of the user's other sessions still on record (for new-device notices). */
  async devicesOf(
    userId: string,
    exceptId: string,
  ): Promise<Array<{ browser: string | null; os: string | null }>> {
    // Distinct: an account that signs in often keeps many sessions of one device.
    return this.db
      .selectFrom("sessions")
      .select(["browser", "os"])
      .distinct()
      .where("user_id", "=", userId)
      .where("id", "!=", exceptId)
      .execute();
  }

  /** Sets or clears the screen lock, and when given the floor for access tokens' `iat`. */
  async lock(id: string, lockedAt: number): Promise<void> {
    await this.db
      .updateTable("sessions")
      .set({ locked_at: lockedAt })
      .where("id", "=", id)
      .execute();
  }

  /** Lifts the lock, refuses the access tokens issued before `tokensValidAfter`, and marks it used `now`. */
  async unlock(id: string, tokensValidAfter: number, now: number): Promise<void> {
    await this.db
      .updateTable("sessions")
      .set({ locked_at: null, tokens_valid_after: tokensValidAfter, last_seen_at: now })
      .where("id", "=", id)
      .execute();
  }

  async touch(id: string, now: number): Promise<void> {
    await this.db.updateTable("sessions").set({ last_seen_at: now }).where("id", "=", id).execute();
  }

  /**
   * Deletes up to `limit` sessions that ended (expired or revoked) before `before`; a
   * bounded batch keeps each statement's locks and WAL short on a large table.
   */
  async purgeEndedBefore(before: number, limit: number): Promise<number> {
    const result = await this.db
      .deleteFrom("sessions")
      .where("id", "in", (eb) =>
        eb
          .selectFrom("sessions")
          .select("id")
          .where((w) => w.or([w("absolute_expires_at", "<", before), w("revoked_at", "<", before)]))
          .limit(limit),
      )
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }

  /** Sessions neither revoked nor expired, across all users (the metrics gauge). */
  async countActive(now: number): Promise<number> {
    const row = await this.db
      .selectFrom("sessions")
      .select((eb) => eb.fn.countAll<number | string>().as("n"))
      .where("revoked_at", "is", null)
      .where("absolute_expires_at", ">", now)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
}

export function toSession(row: Selectable<SessionsTable>): Session {
  return {
    id: row.id,
    userId: row.user_id,
    generation: row.generation,
    rotatedAt: row.rotated_at,
    absoluteExpiresAt: row.absolute_expires_at,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    ip: row.ip,
    userAgent: row.user_agent,
    browser: row.browser,
    os: row.os,
    amr: JSON.parse(row.amr) as string[],
    rememberMe: row.remember_me === 1,
    lockedAt: row.locked_at,
    revokedAt: row.revoked_at,
    revokedReason: row.revoked_reason,
    tokensValidAfter: row.tokens_valid_after,
  };
}
