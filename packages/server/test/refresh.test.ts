import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bearer, json, openAppDb, registerUser, startTestApp, type TestApp } from "./helpers.js";

const ORIGIN = "http://latchkey.test";
const GRACE_MS = 10_000;
const ACCESS_TTL_S = 15 * 60;
const DAY_MS = 86_400_000;

interface TokenBody {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  sessionExpiresIn: number;
  tokenType: string;
  user: { id: string };
}

const generationOf = (refreshToken: string) => Number(refreshToken.split(".")[1]);
const sessionOf = (refreshToken: string) => refreshToken.split(".")[0] as string;

describe("POST /auth/refresh", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const refreshWithBody = (token: string) =>
    app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken: token }) });
  const me = (accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });

  describe("where the token comes from", () => {
    it("rotates a token sent in the JSON body and returns a new pair", async () => {
      const first = await registerUser(app);
      const res = await refreshWithBody(first.refreshToken);
      expect(res.statusCode).toBe(200);
      expect(res.headers["cache-control"]).toBe("no-store");
      const body = res.json<TokenBody>();
      expect(body).toMatchObject({ tokenType: "Bearer", expiresIn: ACCESS_TTL_S });
      expect(body.accessToken).not.toBe(first.accessToken);
      expect(body.refreshToken).not.toBe(first.refreshToken);
      expect(sessionOf(body.refreshToken)).toBe(sessionOf(first.refreshToken));
      expect(generationOf(body.refreshToken)).toBe(generationOf(first.refreshToken) + 1);
      expect(decodeJwt(body.accessToken)).toMatchObject({
        sub: first.user.id,
        sid: sessionOf(first.refreshToken),
      });
      // Both access tokens belong to the one live session.
      expect((await me(first.accessToken)).statusCode).toBe(200);
      expect((await me(body.accessToken)).statusCode).toBe(200);
    });

    it("rotates a token sent as Authorization: Bearer", async () => {
      const first = await registerUser(app);
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: bearer(first.refreshToken),
      });
      expect(res.statusCode).toBe(200);
      const body = res.json<TokenBody>();
      expect(generationOf(body.refreshToken)).toBe(1);
      expect((await me(body.accessToken)).statusCode).toBe(200);
    });

    it("rotates the lk_refresh cookie when the Origin is allowed, and sets new cookies", async () => {
      const first = await registerUser(app);
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: { origin: ORIGIN },
        cookies: { lk_refresh: first.refreshToken },
      });
      expect(res.statusCode).toBe(200);
      const body = res.json<TokenBody>();
      const refreshCookie = res.cookies.find((c) => c.name === "lk_refresh");
      const accessCookie = res.cookies.find((c) => c.name === "lk_access");
      expect(refreshCookie).toMatchObject({
        value: body.refreshToken,
        path: "/auth",
        httpOnly: true,
        secure: true,
        sameSite: "Strict",
      });
      expect(accessCookie).toMatchObject({
        value: body.accessToken,
        path: "/",
        httpOnly: true,
        sameSite: "Lax",
      });
      expect(generationOf(body.refreshToken)).toBe(1);
    });

    it("refuses the lk_refresh cookie without an allowed Origin (CSRF) and leaves it unrotated", async () => {
      const first = await registerUser(app);
      const noOrigin = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        cookies: { lk_refresh: first.refreshToken },
      });
      expect(noOrigin.statusCode).toBe(403);
      expect(noOrigin.json()).toMatchObject({ code: "csrf_rejected" });
      const evil = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: { origin: "http://evil.test" },
        cookies: { lk_refresh: first.refreshToken },
      });
      expect(evil.statusCode).toBe(403);
      const session = await app.svc.store.sessions.findById(sessionOf(first.refreshToken));
      expect(session?.generation).toBe(0);
    });

    it("answers 401 unauthenticated when no token is presented", async () => {
      const none = await app.http.inject({ method: "POST", url: "/auth/refresh" });
      expect(none.statusCode).toBe(401);
      expect(none.headers["content-type"]).toContain("application/problem+json");
      expect(none.json()).toMatchObject({ status: 401, code: "unauthenticated" });
      const empty = await app.http.inject({ method: "POST", url: "/auth/refresh", ...json({}) });
      expect(empty.statusCode).toBe(401);
      expect(empty.json()).toMatchObject({ code: "unauthenticated" });
    });

    it("answers 401 invalid_token for garbage", async () => {
      for (const garbage of ["garbage", "a.b.c", "not-a-uuid.0.mac", `${"x".repeat(36)}.1.y`]) {
        const res = await refreshWithBody(garbage);
        expect(res.statusCode, garbage).toBe(401);
        expect(res.json()).toMatchObject({ code: "invalid_token" });
      }
      const viaBearer = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: bearer("garbage"),
      });
      expect(viaBearer.statusCode).toBe(401);
      expect(viaBearer.json()).toMatchObject({ code: "invalid_token" });
    });
  });

  describe("rotation", () => {
    it("keeps the old access token valid until its own expiry", async () => {
      const first = await registerUser(app);
      app.clock.advance(10 * 60_000);
      const res = await refreshWithBody(first.refreshToken);
      const second = res.json<TokenBody>();
      expect((await me(first.accessToken)).statusCode).toBe(200);

      // 16 min after issue: the first token is past exp + tolerance, the second is not.
      app.clock.advance(6 * 60_000);
      const old = await me(first.accessToken);
      expect(old.statusCode).toBe(401);
      expect(old.json()).toMatchObject({ code: "token_expired" });
      expect((await me(second.accessToken)).statusCode).toBe(200);
    });

    it("rotates the presented token: the session moves one generation per refresh", async () => {
      const first = await registerUser(app);
      const sid = sessionOf(first.refreshToken);
      let token = first.refreshToken;
      for (let i = 1; i <= 3; i++) {
        app.clock.advance(60_000);
        const res = await refreshWithBody(token);
        expect(res.statusCode).toBe(200);
        token = res.json<TokenBody>().refreshToken;
        expect(generationOf(token)).toBe(i);
        expect((await app.svc.store.sessions.findById(sid))?.generation).toBe(i);
      }
    });

    it("answers a replay inside the grace window with the same successor", async () => {
      const first = await registerUser(app);
      const a = (await refreshWithBody(first.refreshToken)).json<TokenBody>();
      app.clock.advance(GRACE_MS - 1);
      const b = await refreshWithBody(first.refreshToken);
      expect(b.statusCode).toBe(200);
      expect(b.json<TokenBody>().refreshToken).toBe(a.refreshToken);
      // A grace answer does not rotate again.
      const session = await app.svc.store.sessions.findById(sessionOf(first.refreshToken));
      expect(session?.generation).toBe(1);

      app.clock.advance(1);
      const late = await refreshWithBody(first.refreshToken);
      expect(late.statusCode).toBe(401);
      expect(late.json()).toMatchObject({ code: "refresh_token_reused" });
    });
  });

  describe("concurrent refreshes over real HTTP", () => {
    const post = (url: string, refreshToken: string) =>
      fetch(`${url}/auth/refresh`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refreshToken }),
      });

    it("gives every one of 16 simultaneous refreshes the same successor", async () => {
      const first = await registerUser(app);
      const url = await app.listen();
      const responses = await Promise.all(
        Array.from({ length: 16 }, () => post(url, first.refreshToken)),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(16).fill(200));
      const bodies = (await Promise.all(responses.map((r) => r.json()))) as TokenBody[];
      const successors = new Set(bodies.map((b) => b.refreshToken));
      expect(successors.size).toBe(1);
      const [successor] = [...successors] as [string];
      expect(generationOf(successor)).toBe(1);

      const sid = sessionOf(first.refreshToken);
      const session = await app.svc.store.sessions.findById(sid);
      expect(session).toMatchObject({ generation: 1, revokedAt: null });

      // The session is alive: every access token works and the successor rotates on.
      for (const b of bodies) expect((await me(b.accessToken)).statusCode).toBe(200);
      const next = await post(url, successor);
      expect(next.status).toBe(200);
      expect(generationOf(((await next.json()) as TokenBody).refreshToken)).toBe(2);
    });

    it("two tabs refreshing at once both succeed; a later replay by one of them is reuse", async () => {
      const first = await registerUser(app);
      const url = await app.listen();
      const [tabA, tabB] = await Promise.all([
        post(url, first.refreshToken),
        post(url, first.refreshToken),
      ]);
      expect([tabA?.status, tabB?.status]).toEqual([200, 200]);
      const a = (await tabA?.json()) as TokenBody;
      const b = (await tabB?.json()) as TokenBody;
      expect(a.refreshToken).toBe(b.refreshToken);

      app.clock.advance(GRACE_MS + 1);
      const replay = await post(url, first.refreshToken);
      expect(replay.status).toBe(401);
      expect(await replay.json()).toMatchObject({ code: "refresh_token_reused" });
      const successor = await post(url, a.refreshToken);
      expect(successor.status).toBe(401);
      expect(await successor.json()).toMatchObject({ code: "session_revoked" });
    });
  });

  describe("reuse detection", () => {
    it("revokes the whole session when a rotated token is replayed after the grace window", async () => {
      const first = await registerUser(app);
      const second = (await refreshWithBody(first.refreshToken)).json<TokenBody>();
      expect((await me(second.accessToken)).statusCode).toBe(200); // session now cached
      app.clock.advance(GRACE_MS + 1);

      const replay = await refreshWithBody(first.refreshToken);
      expect(replay.statusCode).toBe(401);
      expect(replay.json()).toMatchObject({ status: 401, code: "refresh_token_reused" });

      const access = await me(second.accessToken);
      expect(access.statusCode).toBe(401);
      expect(access.json()).toMatchObject({ code: "session_revoked" });
      const successor = await refreshWithBody(second.refreshToken);
      expect(successor.statusCode).toBe(401);
      expect(successor.json()).toMatchObject({ code: "session_revoked" });

      const session = await app.svc.store.sessions.findById(sessionOf(first.refreshToken));
      expect(session).toMatchObject({ revokedReason: "refresh_token_reused" });
      expect(session?.revokedAt).toBe(app.clock.now());
    });

    it("treats a token two generations old as reuse, even inside the grace window", async () => {
      const gen0 = await registerUser(app);
      const gen1 = (await refreshWithBody(gen0.refreshToken)).json<TokenBody>();
      const gen2 = (await refreshWithBody(gen1.refreshToken)).json<TokenBody>();
      expect(generationOf(gen2.refreshToken)).toBe(2);

      const replay = await refreshWithBody(gen0.refreshToken);
      expect(replay.statusCode).toBe(401);
      expect(replay.json()).toMatchObject({ code: "refresh_token_reused" });
      expect((await me(gen2.accessToken)).json()).toMatchObject({ code: "session_revoked" });
    });

    it("writes a refresh_token_reused audit event", async () => {
      const first = await registerUser(app);
      await refreshWithBody(first.refreshToken);
      app.clock.advance(GRACE_MS + 1);
      await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: { "user-agent": "thief/1.0", "content-type": "application/json" },
        payload: JSON.stringify({ refreshToken: first.refreshToken }),
      });
      // Audit events are batched off the response path: write the batch, then read.
      await app.svc.auditLog.flush();
      const event = await vi.waitFor(async () => {
        const events = await app.svc.store.audit.listForUser(first.user.id);
        const found = events.find((e) => e.type === "refresh_token_reused");
        if (!found) throw new Error("no refresh_token_reused event yet");
        return found;
      });
      expect(event).toMatchObject({
        user_id: first.user.id,
        session_id: sessionOf(first.refreshToken),
        user_agent: "thief/1.0",
      });
      expect(JSON.parse(event.detail)).toEqual({ generation: 0 });
    });

    it("refuses a forged token (real session id, wrong MAC) without revoking the session", async () => {
      const first = await registerUser(app);
      const sid = sessionOf(first.refreshToken);
      const realMac = first.refreshToken.split(".")[2] as string;
      const forgeries = [
        `${sid}.0.${"A".repeat(realMac.length)}`,
        `${sid}.0.${realMac.slice(0, -1)}${realMac.endsWith("A") ? "B" : "A"}`,
        `${sid}.1.${realMac}`, // a real MAC moved to another generation
        `${sid}.0.`,
      ];
      for (const forged of forgeries) {
        const res = await refreshWithBody(forged);
        expect(res.statusCode, forged).toBe(401);
        expect(res.json()).toMatchObject({ code: "invalid_token" });
      }
      const session = await app.svc.store.sessions.findById(sid);
      expect(session).toMatchObject({ revokedAt: null, generation: 0 });
      expect((await me(first.accessToken)).statusCode).toBe(200);
      expect((await refreshWithBody(first.refreshToken)).statusCode).toBe(200);
    });

    it("answers session_revoked for a token of a logged-out session", async () => {
      const first = await registerUser(app);
      const out = await app.http.inject({
        method: "POST",
        url: "/auth/logout",
        headers: bearer(first.accessToken),
      });
      expect(out.statusCode).toBe(204);
      const res = await refreshWithBody(first.refreshToken);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: "session_revoked" });
    });
  });

  describe("a refused lk_refresh cookie", () => {
    const refreshWithCookie = (token: string, extra: Record<string, unknown> = {}) =>
      app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: { origin: ORIGIN },
        cookies: { lk_refresh: token },
        ...extra,
      });
    /** The session's cookies deleted with the Path, SameSite and flags they were set with. */
    const expectSessionCookiesCleared = (res: Awaited<ReturnType<typeof refreshWithCookie>>) => {
      const cleared = (name: string) => res.cookies.find((c) => c.name === name);
      expect(cleared("lk_refresh")).toMatchObject({
        value: "",
        maxAge: 0,
        path: "/auth",
        sameSite: "Strict",
        httpOnly: true,
        secure: true,
      });
      expect(cleared("lk_access")).toMatchObject({
        value: "",
        maxAge: 0,
        path: "/",
        sameSite: "Lax",
      });
      expect(cleared("lk_step_up")).toMatchObject({ value: "", maxAge: 0, path: "/" });
    };

    it("is cleared with the access and step-up cookies when refused for good (401)", async () => {
      const reused = await registerUser(app);
      await refreshWithBody(reused.refreshToken);
      app.clock.advance(GRACE_MS + 1);
      const reuse = await refreshWithCookie(reused.refreshToken);
      expect(reuse.json()).toMatchObject({ status: 401, code: "refresh_token_reused" });
      expectSessionCookiesCleared(reuse);

      const loggedOut = await registerUser(app, { email: "out@example.com" });
      await app.http.inject({
        method: "POST",
        url: "/auth/logout",
        headers: bearer(loggedOut.accessToken),
      });
      const revoked = await refreshWithCookie(loggedOut.refreshToken);
      expect(revoked.json()).toMatchObject({ status: 401, code: "session_revoked" });
      expectSessionCookiesCleared(revoked);

      const garbage = await refreshWithCookie("garbage");
      expect(garbage.json()).toMatchObject({ status: 401, code: "invalid_token" });
      expectSessionCookiesCleared(garbage);

      const old = await registerUser(app, { email: "old@example.com" });
      app.clock.advance(7 * DAY_MS + 1);
      const expired = await refreshWithCookie(old.refreshToken);
      expect(expired.json()).toMatchObject({ status: 401, code: "token_expired" });
      expectSessionCookiesCleared(expired);
    });

    it("is kept when the refused token came from the body, and on a CSRF refusal", async () => {
      const live = await registerUser(app);
      const other = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: { origin: ORIGIN, "content-type": "application/json" },
        cookies: { lk_refresh: live.refreshToken },
        payload: JSON.stringify({ refreshToken: "garbage" }),
      });
      expect(other.json()).toMatchObject({ status: 401, code: "invalid_token" });
      expect(other.cookies).toEqual([]);
      const csrf = await refreshWithCookie(live.refreshToken, { headers: {} });
      expect(csrf.json()).toMatchObject({ status: 403, code: "csrf_rejected" });
      expect(csrf.cookies).toEqual([]);
      expect((await refreshWithCookie(live.refreshToken)).statusCode).toBe(200);
    });
  });

  describe("session lifetime", () => {
    const login = (identifier: string, rememberMe?: boolean) =>
      app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier, password: "correct horse battery", rememberMe }),
      });

    it("lasts 7 days by default, counted from login and not extended by refreshing", async () => {
      const first = await registerUser(app);
      app.clock.advance(DAY_MS);
      const res = await refreshWithBody(first.refreshToken);
      expect(res.json<TokenBody>().sessionExpiresIn).toBe(6 * 86_400);

      // One minute before the end: still refreshable, and the access token ends with the session.
      app.clock.advance(6 * DAY_MS - 60_000);
      const last = await refreshWithBody(res.json<TokenBody>().refreshToken);
      expect(last.statusCode).toBe(200);
      expect(last.json()).toMatchObject({ sessionExpiresIn: 60, expiresIn: 60 });

      app.clock.advance(60_000);
      const ended = await refreshWithBody(last.json<TokenBody>().refreshToken);
      expect(ended.statusCode).toBe(401);
      expect(ended.json()).toMatchObject({ code: "token_expired" });
      const access = await me(last.json<TokenBody>().accessToken);
      expect(access.statusCode).toBe(401);
    });

    it("refuses the very first refresh token once the session is 7 days old", async () => {
      const first = await registerUser(app);
      app.clock.advance(7 * DAY_MS);
      const res = await refreshWithBody(first.refreshToken);
      expect(res.statusCode).toBe(401);
      const session = await app.svc.store.sessions.findById(sessionOf(first.refreshToken));
      expect(session?.revokedAt).toBeNull(); // an ended session is not a theft
    });

    it("lasts 7 days without rememberMe and 90 days with it", async () => {
      const email = "lifetime@example.com";
      await registerUser(app, { email });
      const plain = await login(email);
      expect(plain.statusCode).toBe(200);
      expect(plain.json()).toMatchObject({ sessionExpiresIn: 7 * 86_400, expiresIn: 900 });
      const remembered = await login(email, true);
      expect(remembered.json()).toMatchObject({ sessionExpiresIn: 90 * 86_400 });

      app.clock.advance(8 * DAY_MS);
      const a = await refreshWithBody(plain.json<TokenBody>().refreshToken);
      expect(a.statusCode).toBe(401);
      const b = await refreshWithBody(remembered.json<TokenBody>().refreshToken);
      expect(b.statusCode).toBe(200);
      expect(b.json()).toMatchObject({ sessionExpiresIn: 82 * 86_400 });
    });

    it("uses the user's sessionDurationMinutes over both defaults", async () => {
      const email = "short@example.com";
      const { user } = await registerUser(app, { email });
      const db = await openAppDb(app);
      try {
        await db.kysely
          .updateTable("users")
          .set({ session_duration_minutes: 10 })
          .where("id", "=", user.id)
          .execute();
      } finally {
        await db.close();
      }
      const res = await login(email, true);
      // The access token never outlives the 10-minute session.
      expect(res.json()).toMatchObject({ sessionExpiresIn: 600, expiresIn: 600 });
      const claims = decodeJwt(res.json<TokenBody>().accessToken);
      expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(600);

      app.clock.advance(10 * 60_000);
      expect((await refreshWithBody(res.json<TokenBody>().refreshToken)).statusCode).toBe(401);
    });
  });
});

describe("a stale Authorization header", () => {
  it("gives way to the lk_refresh cookie when it is not a refresh token", async () => {
    const app = await startTestApp();
    try {
      const tokens = await registerUser(app);
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: {
          authorization: `Bearer ${tokens.accessToken}`,
          cookie: `lk_refresh=${tokens.refreshToken}`,
          origin: "http://latchkey.test",
        },
      });
      expect(res.statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
