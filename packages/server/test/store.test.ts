import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { randomToken, sha256 } from "../src/domain/crypto.js";
import { uuidv7 } from "../src/domain/ids.js";
import type { Session } from "../src/domain/session.js";
import type { User } from "../src/domain/user.js";
import { ENDED_SESSION_RETENTION_MS, purgeEnded } from "../src/flows/purge.js";
import { isUniqueViolation } from "../src/store/db.js";
import { prepared } from "../src/store/prepared.js";
import { json, openAppDb, registerUser, startTestApp, TEST_DB, type TestApp } from "./helpers.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

describe(`store (${TEST_DB})`, () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const store = () => app.svc.store;

  async function newUser(fields: Partial<Pick<User, "email" | "username">> = {}): Promise<User> {
    const now = app.clock.now();
    return store().users.create(
      {
        id: uuidv7(now),
        email: `u-${randomBytes(4).toString("hex")}@example.com`,
        username: null,
        passwordHash: null,
        role: "user",
        ...fields,
      },
      now,
    );
  }

  /** A session created now (the clock then moves 1 ms so creation order is strict). */
  async function newSession(
    userId: string,
    fields: { refreshHash?: string; lifetimeMs?: number } = {},
  ): Promise<Session> {
    const now = app.clock.now();
    const session = await store().sessions.create(
      {
        id: uuidv7(now),
        userId,
        refreshHash: fields.refreshHash ?? sha256(randomToken()),
        absoluteExpiresAt: now + (fields.lifetimeMs ?? 7 * DAY_MS),
        ip: "203.0.113.7",
        userAgent: null,
        browser: null,
        os: null,
        amr: ["pwd"],
        rememberMe: false,
      },
      now,
    );
    app.clock.advance(1);
    return session;
  }

  async function count(table: "users" | "sessions"): Promise<number> {
    const db = await openAppDb(app);
    try {
      const row = await db.kysely
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    } finally {
      await db.close();
    }
  }

  describe("SessionStore.rotate (compare-and-set)", () => {
    it("lets exactly one of 20 concurrent rotations of the same token win", async () => {
      const user = await newUser();
      const h0 = sha256("gen-0");
      const session = await newSession(user.id, { refreshHash: h0 });
      const now = app.clock.now();

      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store().sessions.rotate(session.id, h0, sha256(`gen-1-${i}`), now),
        ),
      );
      const winners = results.filter((r) => r.ok);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.session).toMatchObject({ id: session.id, generation: 1, rotatedAt: now });
      for (const loser of results.filter((r) => !r.ok)) {
        expect(loser.session?.generation).toBe(1); // losers see the winner's row
      }

      // The winner's successor is the one stored; the presented token became "previous".
      const db = await openAppDb(app);
      try {
        const row = await db.kysely
          .selectFrom("sessions")
          .selectAll()
          .where("id", "=", session.id)
          .executeTakeFirstOrThrow();
        const winnerIndex = results.findIndex((r) => r.ok);
        expect(row.refresh_hash).toBe(sha256(`gen-1-${winnerIndex}`));
        expect(row.previous_refresh_hash).toBe(h0);
        expect(row.generation).toBe(1);
      } finally {
        await db.close();
      }
    });

    it("moves on one generation per round, whatever the concurrency", async () => {
      const user = await newUser();
      const session = await newSession(user.id, { refreshHash: sha256("r0") });
      for (let gen = 1; gen <= 3; gen++) {
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            store().sessions.rotate(
              session.id,
              sha256(`r${gen - 1}`),
              sha256(`r${gen}`),
              app.clock.now(),
            ),
          ),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        expect((await store().sessions.findById(session.id))?.generation).toBe(gen);
      }
    });

    it("refuses a stale hash, a revoked or ended session, and an unknown id", async () => {
      const user = await newUser();
      const now = app.clock.now();

      const live = await newSession(user.id, { refreshHash: sha256("live") });
      const stale = await store().sessions.rotate(live.id, sha256("other"), sha256("x1"), now);
      expect(stale).toMatchObject({ ok: false, session: { id: live.id, generation: 0 } });

      const revoked = await newSession(user.id, { refreshHash: sha256("revoked") });
      await store().sessions.revoke(revoked.id, "logout", now);
      const r = await store().sessions.rotate(revoked.id, sha256("revoked"), sha256("x2"), now);
      expect(r.ok).toBe(false);
      expect(r.session?.revokedAt).toBe(now);

      const ending = await newSession(user.id, { refreshHash: sha256("ending"), lifetimeMs: 10 });
      const e = await store().sessions.rotate(
        ending.id,
        sha256("ending"),
        sha256("x3"),
        ending.absoluteExpiresAt, // the end itself is already too late
      );
      expect(e.ok).toBe(false);

      const unknown = await store().sessions.rotate(uuidv7(now), sha256("live"), sha256("x4"), now);
      expect(unknown).toEqual({ ok: false, session: undefined });
    });
  });

  describe("SessionStore revocation and listing", () => {
    it("revoke reports whether this call revoked the session", async () => {
      const user = await newUser();
      const s = await newSession(user.id);
      const now = app.clock.now();
      expect(await store().sessions.revoke(s.id, "logout", now)).toBe(true);
      expect(await store().sessions.revoke(s.id, "admin", now + 1)).toBe(false);
      expect(await store().sessions.findById(s.id)).toMatchObject({
        revokedAt: now,
        revokedReason: "logout", // the first reason stands
      });
      expect(await store().sessions.revoke(uuidv7(now), "logout", now)).toBe(false);
    });

    it("revokeAllForUser revokes every live session but `keep`, and no one else's", async () => {
      const user = await newUser();
      const other = await newUser();
      const [a, b, c] = [
        await newSession(user.id),
        await newSession(user.id),
        await newSession(user.id),
      ] as [Session, Session, Session];
      const theirs = await newSession(other.id);
      const now = app.clock.now();

      const revoked = await store().sessions.revokeAllForUser(user.id, "logout_all", now, b.id);
      expect(revoked.sort()).toEqual([a.id, c.id].sort());
      expect((await store().sessions.listActive(user.id, now)).map((s) => s.id)).toEqual([b.id]);
      expect((await store().sessions.findById(a.id))?.revokedReason).toBe("logout_all");
      expect((await store().sessions.findById(theirs.id))?.revokedAt).toBeNull();

      // Already-revoked sessions are not counted again; without keep the last one goes too.
      expect(await store().sessions.revokeAllForUser(user.id, "admin", now + 1)).toEqual([b.id]);
      expect(await store().sessions.revokeAllForUser(user.id, "admin", now + 2)).toEqual([]);
      expect(await store().sessions.listActive(user.id, now + 2)).toEqual([]);
    });

    it("listActive excludes revoked and ended sessions, newest first", async () => {
      const user = await newUser();
      const older = await newSession(user.id);
      const revoked = await newSession(user.id);
      const short = await newSession(user.id, { lifetimeMs: HOUR_MS });
      const newer = await newSession(user.id);
      await store().sessions.revoke(revoked.id, "revoked_by_user", app.clock.now());

      const now = app.clock.now();
      expect((await store().sessions.listActive(user.id, now)).map((s) => s.id)).toEqual([
        newer.id,
        short.id,
        older.id,
      ]);
      const later = short.absoluteExpiresAt;
      expect((await store().sessions.listActive(user.id, later)).map((s) => s.id)).toEqual([
        newer.id,
        older.id,
      ]);
    });

    it("findContext returns the session with its user in one read", async () => {
      const user = await newUser({ username: "ctx-user" });
      const s = await newSession(user.id);
      const context = await store().sessions.findContext(s.id);
      expect(context?.session).toEqual(s);
      expect(context?.user).toMatchObject({ id: user.id, username: "ctx-user" });
      expect(await store().sessions.findContext(uuidv7())).toBeUndefined();
    });

    it("touch records lastSeenAt", async () => {
      const user = await newUser();
      const s = await newSession(user.id);
      await store().sessions.touch(s.id, s.createdAt + 90_000);
      expect((await store().sessions.findById(s.id))?.lastSeenAt).toBe(s.createdAt + 90_000);
    });
  });

  describe("purging ended sessions", () => {
    it("purgeEndedBefore deletes only sessions that ended before the cut-off", async () => {
      const user = await newUser();
      const start = app.clock.now();
      const live = await newSession(user.id);
      const expiredLongAgo = await newSession(user.id, { lifetimeMs: HOUR_MS });
      const expiredRecently = await newSession(user.id, { lifetimeMs: 3 * DAY_MS });
      const revokedLongAgo = await newSession(user.id);
      const revokedRecently = await newSession(user.id);
      await store().sessions.revoke(revokedLongAgo.id, "logout", start + HOUR_MS);
      await store().sessions.revoke(revokedRecently.id, "logout", start + 3 * DAY_MS);

      const cutOff = start + 2 * DAY_MS;
      const purged = await store().sessions.purgeEndedBefore(cutOff, 1000);
      expect(purged).toBe(2);
      expect(await store().sessions.findById(expiredLongAgo.id)).toBeUndefined();
      expect(await store().sessions.findById(revokedLongAgo.id)).toBeUndefined();
      for (const kept of [live, expiredRecently, revokedRecently]) {
        expect(await store().sessions.findById(kept.id)).toBeDefined();
      }
      expect(await store().sessions.purgeEndedBefore(cutOff, 1000)).toBe(0);
    });

    it("purgeEnded keeps ended sessions for the retention period, then deletes them", async () => {
      const user = await newUser();
      const live = await newSession(user.id, { lifetimeMs: 30 * DAY_MS });
      const ending = await newSession(user.id, { lifetimeMs: HOUR_MS });
      const revoked = await newSession(user.id, { lifetimeMs: 30 * DAY_MS });
      await store().sessions.revoke(revoked.id, "logout", app.clock.now());

      app.clock.advance(HOUR_MS + ENDED_SESSION_RETENTION_MS - 1_000);
      await purgeEnded(app.svc);
      expect(await store().sessions.findById(ending.id)).toBeDefined();

      app.clock.advance(2_000);
      await purgeEnded(app.svc);
      expect(await store().sessions.findById(ending.id)).toBeUndefined();
      expect(await store().sessions.findById(revoked.id)).toBeUndefined();
      expect(await store().sessions.findById(live.id)).toBeDefined();
    });
  });

  describe("purging guests", () => {
    const guest = async (body: { username: string; email?: string }) => {
      const res = await app.http.inject({ method: "POST", url: "/auth/guest", ...json(body) });
      expect(res.statusCode).toBe(201);
      return res.json<{ user: { id: string } }>().user.id;
    };

    it("purgeEnded deletes a guest whose only API token expired, a day after its session", async () => {
      const lapsed = await guest({ username: "lapsed" });
      const now = app.clock.now();
      await store().apiTokens.create(
        {
          id: uuidv7(now),
          userId: lapsed,
          name: "ci",
          prefix: "abcdefgh",
          tokenHash: sha256(randomToken(32)),
          scopes: ["profile:read"],
          expiresAt: now + HOUR_MS,
        },
        now,
      );
      app.clock.advance(50 * HOUR_MS + ENDED_SESSION_RETENTION_MS + 1_000);
      await purgeEnded(app.svc);
      expect(await store().users.findById(lapsed)).toBeUndefined();
      const db = await openAppDb(app);
      onTestFinished(() => db.close());
      const left = await db.kysely
        .selectFrom("api_tokens")
        .select("id")
        .where("user_id", "=", lapsed)
        .execute();
      expect(left).toEqual([]);
    });

    it("purgeEnded deletes a guest nobody can sign in as again, a day after its session", async () => {
      const gone = await guest({ username: "gone" });
      const returning = await guest({ username: "back", email: "back@example.com" });
      const scripted = await guest({ username: "scripted" });
      const now = app.clock.now();
      await store().apiTokens.create(
        {
          id: uuidv7(now),
          userId: scripted,
          name: "ci",
          prefix: "abcdefgh",
          tokenHash: sha256(randomToken(32)),
          scopes: ["profile:read"],
          expiresAt: null,
        },
        now,
      );
      const account = await registerUser(app);

      // Its session lives 50 hours and is kept a day after it ends.
      app.clock.advance(50 * HOUR_MS + ENDED_SESSION_RETENTION_MS - 1_000);
      await purgeEnded(app.svc);
      expect(await store().users.findById(gone)).toBeDefined();
      app.clock.advance(2_000);
      await purgeEnded(app.svc);
      expect(await store().users.findById(gone)).toBeUndefined();
      // An email to come back with, or an API token, is a way in: those stay.
      for (const kept of [returning, scripted, account.user.id]) {
        expect(await store().users.findById(kept)).toBeDefined();
      }
    });
  });

  describe("one-time tokens", () => {
    const token = (userId: string, email: string, hash: string, expiresAt: number) => ({
      userId,
      purpose: "reset_password" as const,
      tokenHash: hash,
      email,
      expiresAt,
    });

    it("consume answers once, and never for another purpose or after expiry", async () => {
      const user = await newUser();
      const now = app.clock.now();
      await store().oneTimeTokens.create(token(user.id, "a@x.test", "h-once", now + HOUR_MS), now);
      expect(await store().oneTimeTokens.consume("h-once", "magic_link", now)).toBeUndefined();
      expect(await store().oneTimeTokens.consume("h-once", "reset_password", now)).toEqual({
        userId: user.id,
        email: "a@x.test",
      });
      expect(await store().oneTimeTokens.consume("h-once", "reset_password", now)).toBeUndefined();

      await store().oneTimeTokens.create(token(user.id, "a@x.test", "h-late", now + HOUR_MS), now);
      expect(
        await store().oneTimeTokens.consume("h-late", "reset_password", now + HOUR_MS),
      ).toBeUndefined();
    });

    it("voidForUser ends unused tokens of the named purposes only; purge deletes dead ones", async () => {
      const user = await newUser();
      const now = app.clock.now();
      await store().oneTimeTokens.create(token(user.id, "a@x.test", "h-void", now + HOUR_MS), now);
      await store().oneTimeTokens.create(
        { ...token(user.id, "a@x.test", "h-keep", now + HOUR_MS), purpose: "verify_email" },
        now,
      );
      await store().oneTimeTokens.voidForUser(user.id, ["reset_password", "magic_link"], now);
      expect(await store().oneTimeTokens.consume("h-void", "reset_password", now)).toBeUndefined();
      expect(await store().oneTimeTokens.consume("h-keep", "verify_email", now)).toBeDefined();
      expect(await store().oneTimeTokens.purgeBefore(now + 2 * HOUR_MS)).toBeGreaterThanOrEqual(2);
    });
  });

  describe("UserStore uniqueness", () => {
    async function violation(write: () => Promise<unknown>): Promise<unknown> {
      try {
        await write();
      } catch (err) {
        return err;
      }
      throw new Error("expected the write to fail");
    }

    it("detects a duplicate email as a unique violation", async () => {
      const email = `dup-${randomBytes(4).toString("hex")}@example.com`;
      await newUser({ email });
      const err = await violation(() => newUser({ email }));
      expect(isUniqueViolation(err)).toBe(true);
    });

    it("detects a duplicate username, whatever its case, as a unique violation", async () => {
      const name = `Alice${randomBytes(3).toString("hex")}`;
      await newUser({ username: name });
      const err = await violation(() => newUser({ username: name.toLowerCase() }));
      expect(isUniqueViolation(err)).toBe(true);
      expect(await store().users.findByUsernameKey(name.toLowerCase())).toMatchObject({
        username: name,
      });
    });

    it("allows many users without email or username", async () => {
      await newUser({ email: null });
      await newUser({ email: null });
    });

    it("does not mistake other failures for unique violations", async () => {
      // A session for a user that does not exist: a foreign-key violation.
      const err = await violation(() => newSession(uuidv7()));
      expect(isUniqueViolation(err)).toBe(false);
      expect(isUniqueViolation(new Error("boom"))).toBe(false);
    });
  });

  describe("multi-step writes are all or nothing", () => {
    const register = (email: string, username?: string) =>
      app.http.inject({
        method: "POST",
        url: "/auth/register",
        ...json({ email, username, password: "correct horse battery" }),
      });

    it("a register that collides leaves no user and no session behind", async () => {
      const email = `taken-${randomBytes(4).toString("hex")}@example.com`;
      const username = `Taken${randomBytes(3).toString("hex")}`;
      expect((await register(email, username)).statusCode).toBe(201);
      const users = await count("users");
      const sessions = await count("sessions");

      const sameEmail = await register(email.toUpperCase());
      expect(sameEmail.statusCode).toBe(409);
      expect(sameEmail.json()).toMatchObject({ code: "conflict" });
      const sameName = await register(`x-${email}`, username.toLowerCase());
      expect(sameName.statusCode).toBe(409);

      expect(await count("users")).toBe(users);
      expect(await count("sessions")).toBe(sessions);
    });

    it("concurrent registrations of one email create one user and one session", async () => {
      const email = `race-${randomBytes(4).toString("hex")}@example.com`;
      const users = await count("users");
      const sessions = await count("sessions");
      const results = await Promise.all(Array.from({ length: 5 }, () => register(email)));
      expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409]);
      expect(await count("users")).toBe(users + 1);
      expect(await count("sessions")).toBe(sessions + 1);
    });

    it("a transaction that fails after writing rolls every write back", async () => {
      const users = await count("users");
      const sessions = await count("sessions");
      const id = uuidv7(app.clock.now());
      await expect(
        store().transaction(async (tx) => {
          const now = app.clock.now();
          await tx.users.create(
            { id, email: null, username: null, passwordHash: null, role: "user" },
            now,
          );
          await tx.sessions.create(
            {
              id: uuidv7(now),
              userId: id,
              refreshHash: sha256(randomToken()),
              absoluteExpiresAt: now + DAY_MS,
              ip: null,
              userAgent: null,
              browser: null,
              os: null,
              amr: [],
              rememberMe: false,
            },
            now,
          );
          throw new Error("step three failed");
        }),
      ).rejects.toThrow("step three failed");
      expect(await store().users.findById(id)).toBeUndefined();
      expect(await count("users")).toBe(users);
      expect(await count("sessions")).toBe(sessions);
    });
  });
});

describe("AuditLog", () => {
  it("writes queued events in one batch on flush, and nothing twice", async () => {
    const app = await startTestApp();
    try {
      const { user } = await registerUser(app);
      for (let i = 0; i < 5; i++) {
        app.svc.auditLog.add({ type: "login_failed", userId: user.id, detail: { i } });
      }
      await app.svc.auditLog.flush();
      await app.svc.auditLog.flush();
      const events = await app.svc.store.audit.listForUser(user.id);
      const failed = events.filter((e) => e.type === "login_failed");
      expect(failed.map((e) => JSON.parse(e.detail).i).sort()).toEqual([0, 1, 2, 3, 4]);
    } finally {
      await app.close();
    }
  });
});

describe(`prepared queries (${TEST_DB})`, () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  // One query compiled once: a bound parameter used twice, and a constant of the query.
  const usersNamed = prepared((db, v: { email: string; role: string }) =>
    db
      .selectFrom("users")
      .select(["email", "role"])
      .where((eb) => eb.or([eb("email", "=", v.email), eb("username", "=", v.email)]))
      .where("role", "=", v.role)
      .where("guest", "=", 0),
  );

  it("runs with each call's values, in and out of transactions", async () => {
    const [a, b] = ["prepared-a@example.com", "prepared-b@example.com"];
    await registerUser(app, { email: a });
    await registerUser(app, { email: b });
    const { kysely: db, close } = await openAppDb(app);
    onTestFinished(close);
    expect(await usersNamed(db, { email: a, role: "user" })).toEqual([{ email: a, role: "user" }]);
    expect(await usersNamed(db, { email: b, role: "user" })).toEqual([{ email: b, role: "user" }]);
    expect(await usersNamed(db, { email: b, role: "admin" })).toEqual([]);
    await db.transaction().execute(async (trx) => {
      expect(await usersNamed(trx, { email: a, role: "user" })).toHaveLength(1);
    });
  });
});
