import { hash as argon2 } from "@node-rs/argon2";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { purgeOldAuditEvents } from "../src/flows/purge.js";
import { bearer, json, registerUser, startTestApp, type TestApp } from "./helpers.js";
import { enrolledUser, finishMfa, passwordLogin } from "./mfa-helpers.js";

const PASSWORD = "correct horse battery";

interface EventView {
  id: string;
  type: string;
  userId: string | null;
  sessionId: string | null;
  ip: string | null;
  userAgent: string | null;
  detail: Record<string, unknown>;
  createdAt: string;
}

let app: TestApp;
let adminToken: string;
beforeEach(async () => {
  app = await startTestApp({ operations: { auditRetentionDays: 30 } });
  const res = await app.http.inject({
    method: "POST",
    url: "/auth/setup",
    ...json({ username: "root", password: PASSWORD }),
  });
  adminToken = res.json().accessToken;
});
afterEach(() => app.close());

async function events(query: string): Promise<{ events: EventView[]; nextCursor: string | null }> {
  const res = await app.http.inject({ url: `/admin/audit?${query}`, headers: bearer(adminToken) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

const types = async (userId: string) =>
  (await events(`userId=${userId}&limit=200`)).events.map((e) => e.type).reverse();

describe("audit log", () => {
  it("records the security events of an account's life, with IP and user agent", async () => {
    const email = "life@example.com";
    const { user } = await registerUser(app, { email, password: PASSWORD });
    await app.http.inject({
      method: "POST",
      url: "/auth/login",
      headers: { "content-type": "application/json", "user-agent": "audit-test/1.0" },
      payload: JSON.stringify({ identifier: email, password: "wrong password" }),
    });
    const ok = (await passwordLogin(app, email)).json();
    await app.http.inject({
      method: "POST",
      url: "/tokens",
      headers: { ...bearer(ok.accessToken), "content-type": "application/json" },
      payload: JSON.stringify({ name: "ci", scopes: ["profile:read"] }),
    });
    const other = (await passwordLogin(app, email)).json();
    await app.http.inject({
      method: "DELETE",
      url: `/sessions/${JSON.parse(Buffer.from(other.accessToken.split(".")[1], "base64url").toString()).sid}`,
      headers: bearer(ok.accessToken),
    });
    await app.http.inject({ method: "POST", url: "/auth/logout", headers: bearer(ok.accessToken) });

    expect(await types(user.id)).toEqual([
      "register",
      "login_failed",
      "login_succeeded",
      "api_token_created",
      "login_succeeded",
      "session_revoked",
      "logout",
    ]);
    const failed = (await events(`userId=${user.id}&type=login_failed`)).events[0];
    expect(failed).toMatchObject({
      ip: "127.0.0.1",
      userAgent: "audit-test/1.0",
      detail: { identifier: email },
    });
    expect(Date.parse(failed?.createdAt ?? "")).toBe(app.clock.now());
  });

  it("records lockouts, MFA changes, backup codes and refresh-token reuse", async () => {
    const mfa = await enrolledUser(app);
    const pending = (await passwordLogin(app, mfa.email)).json();
    expect((await finishMfa(app, pending.mfaToken, mfa.backupCodes[0] ?? "")).statusCode).toBe(200);

    const reuser = await registerUser(app, { password: PASSWORD });
    const refresh = (token: string) =>
      app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken: token }) });
    expect((await refresh(reuser.refreshToken)).statusCode).toBe(200);
    app.clock.advance(60_000); // past the grace window
    expect((await refresh(reuser.refreshToken)).statusCode).toBe(401);

    for (let i = 0; i < 6; i++) await passwordLogin(app, "locked-out", "wrong password");

    expect(await types(mfa.userId)).toEqual([
      "register",
      "mfa_enabled",
      "backup_code_used",
      "login_succeeded",
    ]);
    expect(await types(reuser.user.id)).toContain("refresh_token_reused");
    const lockouts = (await events("type=login_rate_limited")).events;
    expect(lockouts).toHaveLength(1);
    expect(lockouts[0]?.detail).toEqual({ identifier: "locked-out" });
  });

  it("records the rehash a login makes after the Argon2 parameters changed", async () => {
    const email = "rehash@example.com";
    const { user } = await registerUser(app, { email, password: PASSWORD });
    const stale = await argon2(PASSWORD, { algorithm: 2, memoryCost: 4096, timeCost: 3 });
    await app.svc.store.users.setPasswordHash(user.id, stale, app.clock.now());
    expect(app.svc.hasher.needsRehash(stale)).toBe(true);

    expect((await passwordLogin(app, email)).statusCode).toBe(200);
    await vi.waitUntil(async () => (await types(user.id)).includes("password_rehashed"));
    const fresh = (await app.svc.store.users.findById(user.id))?.passwordHash ?? stale;
    expect(app.svc.hasher.needsRehash(fresh)).toBe(false);
    // Once, and in no fixed order with login_succeeded: the rehash runs beside the sign-in.
    expect((await types(user.id)).sort()).toEqual([
      "login_succeeded",
      "password_rehashed",
      "register",
    ]);
  });

  it("filters by time and pages by cursor, newest first", async () => {
    const start = app.clock.now();
    const { user } = await registerUser(app, { email: "pages@example.com", password: PASSWORD });
    for (let i = 0; i < 5; i++) {
      app.clock.advance(60_000);
      await passwordLogin(app, "pages@example.com", "wrong password");
    }
    const since = new Date(start + 120_000).toISOString();
    const until = new Date(start + 240_000).toISOString();
    const windowed = await events(`userId=${user.id}&since=${since}&until=${until}`);
    expect(windowed.events.map((e) => e.createdAt)).toEqual([
      new Date(start + 180_000).toISOString(),
      new Date(start + 120_000).toISOString(),
    ]);

    const seen: string[] = [];
    let page = await events(`userId=${user.id}&limit=2`);
    seen.push(...page.events.map((e) => e.id));
    while (page.nextCursor) {
      page = await events(`userId=${user.id}&limit=2&cursor=${page.nextCursor}`);
      seen.push(...page.events.map((e) => e.id));
    }
    expect(seen).toHaveLength(6);
    expect([...seen].sort().reverse()).toEqual(seen);

    const bad = await app.http.inject({
      url: "/admin/audit?since=yesterday",
      headers: bearer(adminToken),
    });
    expect(bad.statusCode).toBe(400);
  });

  it("deletes events older than the configured retention", async () => {
    const { user } = await registerUser(app);
    await app.svc.auditLog.flush();
    app.clock.advance(31 * 86_400_000);
    await passwordLogin(app, "nobody-here", "wrong password");
    await app.svc.auditLog.flush();
    expect(await purgeOldAuditEvents(app.svc)).toBe(2); // setup and register
    adminToken = (await passwordLogin(app, "root")).json().accessToken;
    await app.svc.auditLog.flush();
    expect(await types(user.id)).toEqual([]);
    expect((await events("type=login_failed")).events).toHaveLength(1);
    expect((await events("type=login_succeeded")).events).toHaveLength(1);
  });
});
