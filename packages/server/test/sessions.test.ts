import type { LightMyRequestResponse } from "fastify";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bearer, json, registerUser, startTestApp, type TestApp } from "./helpers.js";

const PASSWORD = "correct horse battery";
const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const START = Date.parse("2026-01-01T00:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();

interface SessionView {
  id: string;
  ip: string | null;
  userAgent: string | null;
  browser: string | null;
  os: string | null;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  current: boolean;
}
interface Tokens {
  accessToken: string;
  refreshToken: string;
}

let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

async function login(
  identifier: string,
  client: { userAgent?: string; ip?: string; rememberMe?: boolean } = {},
): Promise<Tokens> {
  const { payload, headers } = json({
    identifier,
    password: PASSWORD,
    ...(client.rememberMe ? { rememberMe: true } : {}),
  });
  const res = await app.http.inject({
    method: "POST",
    url: "/auth/login",
    payload,
    headers: { ...headers, ...(client.userAgent ? { "user-agent": client.userAgent } : {}) },
    ...(client.ip ? { remoteAddress: client.ip } : {}),
  });
  expect(res.statusCode).toBe(200);
  return res.json();
}

async function listSessions(accessToken: string): Promise<SessionView[]> {
  const res = await app.http.inject({ url: "/sessions", headers: bearer(accessToken) });
  expect(res.statusCode).toBe(200);
  return res.json().sessions;
}

const revoke = (accessToken: string, id: string) =>
  app.http.inject({ method: "DELETE", url: `/sessions/${id}`, headers: bearer(accessToken) });

const me = (accessToken: string) =>
  app.http.inject({ url: "/users/me", headers: bearer(accessToken) });

const refresh = (refreshToken: string) =>
  app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken }) });

function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status, code });
}

describe("GET /sessions", () => {
  it("lists the user's live sessions, newest first, with device details", async () => {
    await registerUser(app, { email: "s@example.com" });
    // 30 s apart: less than the lastSeenAt write interval, so only the caller's own
    // session (listed with its live activity) shows a later time.
    app.clock.advance(30_000);
    const chrome = await login("s@example.com", { userAgent: CHROME, ip: "203.0.113.7" });
    app.clock.advance(30_000);
    await login("s@example.com", { userAgent: FIREFOX, ip: "198.51.100.23" });

    const sessions = await listSessions(chrome.accessToken);
    expect(sessions).toHaveLength(3);
    const [firefoxView, chromeView, registered] = sessions;
    expect(chromeView).toEqual({
      id: expect.any(String),
      ip: "203.0.113.7",
      userAgent: CHROME,
      browser: "Chrome 126",
      os: "Windows 10",
      createdAt: iso(START + 30_000),
      lastSeenAt: iso(START + 60_000),
      expiresAt: iso(START + 30_000 + 7 * 86_400_000),
      current: true,
    });
    expect(firefoxView).toMatchObject({
      ip: "198.51.100.23",
      userAgent: FIREFOX,
      browser: "Firefox 128",
      os: "Linux",
      createdAt: iso(START + 60_000),
      current: false,
    });
    expect(registered).toMatchObject({ createdAt: iso(START), current: false });
    expect(new Set(sessions.map((s) => s.id)).size).toBe(3);
  });

  it("marks as current the session of whoever asks", async () => {
    const first = await registerUser(app, { email: "c@example.com" });
    const second = await login("c@example.com");
    const seenByFirst = await listSessions(first.accessToken);
    const seenBySecond = await listSessions(second.accessToken);
    const currentOf = (list: SessionView[]) => list.filter((s) => s.current).map((s) => s.id);
    expect(currentOf(seenByFirst)).toHaveLength(1);
    expect(currentOf(seenBySecond)).toHaveLength(1);
    expect(currentOf(seenByFirst)).not.toEqual(currentOf(seenBySecond));
  });

  it("shows only the caller's own sessions", async () => {
    const mine = await registerUser(app);
    await registerUser(app);
    expect(await listSessions(mine.accessToken)).toHaveLength(1);
  });

  it("leaves out revoked and expired sessions", async () => {
    const keeper = await registerUser(app, { email: "e@example.com" });
    const revoked = await login("e@example.com");
    const remembered = await login("e@example.com", { rememberMe: true });
    await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(revoked.accessToken),
    });
    expect(await listSessions(keeper.accessToken)).toHaveLength(2);

    app.clock.advance(8 * 86_400_000); // the 7-day sessions have ended
    const renewed = (await refresh(remembered.refreshToken)).json() as Tokens;
    const sessions = await listSessions(renewed.accessToken);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.current).toBe(true);
  });

  it("requires an access token", async () => {
    expectProblem(await app.http.inject({ url: "/sessions" }), 401, "unauthenticated");
  });

  describe("lastSeenAt", () => {
    it("is stored at most once a minute, while the caller's own listing shows live activity", async () => {
      const tokens = await registerUser(app);
      const [own] = await listSessions(tokens.accessToken);
      const stored = async () => (await app.svc.store.sessions.findById(own?.id ?? ""))?.lastSeenAt;
      const listed = async () => (await listSessions(tokens.accessToken))[0]?.lastSeenAt;

      app.clock.advance(30_000); // activity within the minute is not written
      expect((await me(tokens.accessToken)).statusCode).toBe(200);
      expect(await stored()).toBe(START);
      expect(await listed()).toBe(iso(START + 30_000));

      app.clock.advance(31_000); // 61 s after the last write
      expect((await me(tokens.accessToken)).statusCode).toBe(200);
      await vi.waitFor(async () => expect(await stored()).toBe(START + 61_000));

      app.clock.advance(30_000); // again within the minute of that write
      expect((await me(tokens.accessToken)).statusCode).toBe(200);
      expect(await stored()).toBe(START + 61_000);

      app.clock.advance(61_000);
      expect((await me(tokens.accessToken)).statusCode).toBe(200);
      await vi.waitFor(async () => expect(await stored()).toBe(START + 152_000));
    });
  });
});

describe("DELETE /sessions/:id", () => {
  it("revokes one session: its access token is refused at once, its refresh token too", async () => {
    const keeper = await registerUser(app, { email: "d@example.com" });
    const victim = await login("d@example.com");
    expect((await me(victim.accessToken)).statusCode).toBe(200); // now cached as live
    const target = (await listSessions(keeper.accessToken)).find((s) => !s.current);
    if (!target) throw new Error("no other session listed");

    const res = await revoke(keeper.accessToken, target.id);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");

    expectProblem(await me(victim.accessToken), 401, "session_revoked");
    expectProblem(await refresh(victim.refreshToken), 401, "session_revoked");
    expect((await me(keeper.accessToken)).statusCode).toBe(200);
    expect((await listSessions(keeper.accessToken)).map((s) => s.id)).not.toContain(target.id);
  });

  it("can end the caller's own session, clearing its cookies as logout does", async () => {
    const own = await registerUser(app, { email: "own@example.com" });
    const [ownSession] = await listSessions(own.accessToken);
    const res = await revoke(own.accessToken, ownSession?.id ?? "");
    expect(res.statusCode).toBe(204);
    const cleared = res.cookies.filter((c) => c.value === "").map((c) => c.name);
    expect(cleared.sort()).toEqual(["lk_access", "lk_refresh", "lk_step_up"]);
    expectProblem(await me(own.accessToken), 401, "session_revoked");
    // Ending another session leaves the caller's cookies alone.
    const second = await login("own@example.com");
    await login("own@example.com");
    const [third] = (await listSessions(second.accessToken)).filter((s) => !s.current);
    const other = await revoke(second.accessToken, third?.id ?? "");
    expect(other.statusCode).toBe(204);
    expect(other.cookies).toEqual([]);
  });

  it("answers 404 for another user's session and leaves it alone", async () => {
    const alice = await registerUser(app);
    const mallory = await registerUser(app);
    const [aliceSession] = await listSessions(alice.accessToken);

    expectProblem(await revoke(mallory.accessToken, aliceSession?.id ?? ""), 404, "not_found");
    expect((await me(alice.accessToken)).statusCode).toBe(200);
  });

  it("answers 404 for an unknown or already revoked session", async () => {
    const tokens = await registerUser(app, { email: "u@example.com" });
    await login("u@example.com");
    const otherId = (await listSessions(tokens.accessToken)).find((s) => !s.current)?.id ?? "";
    expect((await revoke(tokens.accessToken, otherId)).statusCode).toBe(204);

    expectProblem(await revoke(tokens.accessToken, otherId), 404, "not_found");
    expectProblem(
      await revoke(tokens.accessToken, "01890a5d-ac96-774b-bcce-b302099a8057"),
      404,
      "not_found",
    );
    expectProblem(await revoke(tokens.accessToken, "not-a-session"), 404, "not_found");
  });

  it("ends a session once when asked in parallel: one 204, the rest 404, one audit event", async () => {
    const tokens = await registerUser(app, { email: "par@example.com" });
    await login("par@example.com");
    const otherId = (await listSessions(tokens.accessToken)).find((s) => !s.current)?.id ?? "";
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => revoke(tokens.accessToken, otherId)),
    );
    expect(answers.map((r) => r.statusCode).sort()).toEqual([
      204, 404, 404, 404, 404, 404, 404, 404,
    ]);
    await app.svc.auditLog.flush();
    const events = await app.svc.store.audit.listForUser(tokens.user.id);
    expect(events.filter((e) => e.type === "session_revoked")).toHaveLength(1);
  });

  it("requires an access token", async () => {
    const res = await app.http.inject({ method: "DELETE", url: "/sessions/anything" });
    expectProblem(res, 401, "unauthenticated");
  });
});
