import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, json, registerUser, startTestApp, type TestApp } from "./helpers.js";

const PASSWORD = "correct horse battery";

let app: TestApp;
let admin: { accessToken: string; user: { id: string } };
beforeEach(async () => {
  app = await startTestApp();
  const res = await app.http.inject({
    method: "POST",
    url: "/auth/setup",
    ...json({ username: "root", email: "root@example.com", password: PASSWORD }),
  });
  expect(res.statusCode).toBe(201);
  admin = res.json();
});
afterEach(() => app.close());

const asAdmin = (
  method: "GET" | "PATCH" | "DELETE" | "POST",
  url: string,
  body?: unknown,
  token = admin.accessToken,
) =>
  app.http.inject({
    method,
    url,
    headers: { ...bearer(token), ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { payload: JSON.stringify(body) } : {}),
  });

const login = (identifier: string) =>
  app.http.inject({
    method: "POST",
    url: "/auth/login",
    ...json({ identifier, password: PASSWORD }),
  });

describe("admin API", () => {
  it("refuses non-admins with 403 forbidden and anonymous callers with 401", async () => {
    const user = await registerUser(app, { password: PASSWORD });
    const res = await asAdmin("GET", "/admin/users", undefined, user.accessToken);
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe("forbidden");
    expect((await app.http.inject({ url: "/admin/users" })).statusCode).toBe(401);
    expect((await asAdmin("GET", "/admin/audit", undefined, user.accessToken)).statusCode).toBe(
      403,
    );
  });

  it("lists users newest first in cursor pages, and searches email and username", async () => {
    for (let i = 0; i < 5; i++) {
      await registerUser(app, { email: `page-${i}@example.com`, username: `pager_${i}` });
      app.clock.advance(1);
    }
    const first = await asAdmin("GET", "/admin/users?limit=2");
    expect(first.statusCode).toBe(200);
    const page1 = first.json<{ users: Array<{ email: string }>; nextCursor: string }>();
    expect(page1.users.map((u) => u.email)).toEqual(["page-4@example.com", "page-3@example.com"]);
    const emails: string[] = page1.users.map((u) => u.email);
    let cursor: string | null = page1.nextCursor;
    while (cursor) {
      const page: { users: Array<{ email: string }>; nextCursor: string | null } = (
        await asAdmin("GET", `/admin/users?limit=2&cursor=${cursor}`)
      ).json();
      emails.push(...page.users.map((u) => u.email));
      cursor = page.nextCursor;
    }
    expect(emails).toHaveLength(6); // five users and the admin
    expect(new Set(emails).size).toBe(6);

    const byEmail = (await asAdmin("GET", "/admin/users?search=PAGE-2@")).json();
    expect(byEmail.users.map((u: { username: string }) => u.username)).toEqual(["pager_2"]);
    const byName = (await asAdmin("GET", "/admin/users?q=pager_1")).json();
    expect(byName.users).toHaveLength(1);
    // LIKE wildcards in the search are literal: `_` does not match any character.
    expect((await asAdmin("GET", "/admin/users?search=pager%5F")).json().users).toHaveLength(5);
    expect((await asAdmin("GET", "/admin/users?search=pagerX")).json().users).toHaveLength(0);
    expect((await asAdmin("GET", "/admin/users?search=%25")).json().users).toHaveLength(0);

    expect((await asAdmin("GET", "/admin/users?limit=0")).statusCode).toBe(400);
    expect((await asAdmin("GET", "/admin/users?cursor=nonsense")).statusCode).toBe(400);
  });

  it("search finds guests by their name and guest email, case-insensitively", async () => {
    const guest = (body: { username: string; email?: string }) =>
      app.http.inject({ method: "POST", url: "/auth/guest", ...json(body) });
    const wanderer = (await guest({ username: "Wanderer_7", email: "Drifter@Example.com" })).json();
    const emile = (await guest({ username: "emile-B" })).json();
    await registerUser(app, { email: "someone@example.com", username: "regular" });
    const ids = async (search: string) =>
      (await asAdmin("GET", `/admin/users?search=${encodeURIComponent(search)}`))
        .json<{ users: Array<{ id: string }> }>()
        .users.map((u) => u.id);

    expect(await ids("wanderer")).toEqual([wanderer.user.id]);
    expect(await ids("WANDERER_7")).toEqual([wanderer.user.id]);
    expect(await ids("drifter@example")).toEqual([wanderer.user.id]);
    expect(await ids("DRIFTER@")).toEqual([wanderer.user.id]);
    expect(await ids("Emile-b")).toEqual([emile.user.id]);
    expect(await ids("mile")).toEqual([emile.user.id]);
    // Wildcards stay literal on guests' fields too.
    expect(await ids("wanderer_")).toEqual([wanderer.user.id]);
    expect(await ids("wandere%")).toEqual([]);
    expect(await ids("d_ifter")).toEqual([]);
    // The same search still finds real accounts, and a guest's name is no real username.
    expect(await ids("regular")).toHaveLength(1);
    expect(await ids("example.com")).toHaveLength(3); // root, someone and the guest's email
  });

  it("reads, changes and deletes one user", async () => {
    const user = await registerUser(app);
    const read = await asAdmin("GET", `/admin/users/${user.user.id}`);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ id: user.user.id, role: "user", disabled: false });

    const changed = await asAdmin("PATCH", `/admin/users/${user.user.id}`, {
      role: "support",
      tier: "pro",
      subscriptionStatus: "active",
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({
      role: "support",
      tier: "pro",
      subscriptionStatus: "active",
      limits: { apiTokens: 100 },
    });
    // The user's own view follows at once (the session cache was told).
    const me = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
    expect(me.json()).toMatchObject({ role: "support", tier: "pro" });

    const unknownTier = await asAdmin("PATCH", `/admin/users/${user.user.id}`, { tier: "gold" });
    expect(unknownTier.statusCode).toBe(400);
    expect(unknownTier.json().code).toBe("validation_failed");
    expect((await asAdmin("PATCH", `/admin/users/${user.user.id}`, {})).statusCode).toBe(400);

    expect((await asAdmin("DELETE", `/admin/users/${user.user.id}`)).statusCode).toBe(204);
    expect((await asAdmin("GET", `/admin/users/${user.user.id}`)).statusCode).toBe(404);
    expect((await asAdmin("DELETE", `/admin/users/${user.user.id}`)).statusCode).toBe(404);
    const gone = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
    expect(gone.statusCode).toBe(401);
  });

  it("disabling ends the user's sessions at once; login then answers 403 account_disabled", async () => {
    const email = "disable-me@example.com";
    const user = await registerUser(app, { email, password: PASSWORD });
    expect(
      (await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) })).statusCode,
    ).toBe(200);

    const res = await asAdmin("PATCH", `/admin/users/${user.user.id}`, { disabled: true });
    expect(res.statusCode).toBe(200);
    expect(res.json().disabled).toBe(true);

    const me = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
    expect(me.statusCode).toBe(401);
    expect(me.json().code).toBe("session_revoked");
    const refresh = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: user.refreshToken }),
    });
    expect(refresh.statusCode).toBe(401);
    const denied = await login(email);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().code).toBe("account_disabled");

    await asAdmin("PATCH", `/admin/users/${user.user.id}`, { disabled: false });
    expect((await login(email)).statusCode).toBe(200);
  });

  it("a disabled user's API tokens answer 403; enabling again deletes them", async () => {
    const email = "contained@example.com";
    const user = await registerUser(app, { email, password: PASSWORD });
    const created = await app.http.inject({
      method: "POST",
      url: "/tokens",
      ...json({ name: "left behind", scopes: ["*"] }),
      headers: { "content-type": "application/json", ...bearer(user.accessToken) },
    });
    expect(created.statusCode).toBe(201);
    const apiToken = created.json().token as string;
    const me = () => app.http.inject({ url: "/users/me", headers: bearer(apiToken) });
    expect((await me()).statusCode).toBe(200); // cached from here on

    await asAdmin("PATCH", `/admin/users/${user.user.id}`, { disabled: true });
    expect((await me()).json()).toMatchObject({ status: 403, code: "account_disabled" });
    expect(
      (await asAdmin("PATCH", `/admin/users/${user.user.id}`, { disabled: false })).statusCode,
    ).toBe(200);

    const after = await me();
    expect(after.statusCode).toBe(401);
    expect(after.json().code).toBe("invalid_token");
    const signedIn = (await login(email)).json();
    const tokens = await app.http.inject({ url: "/tokens", headers: bearer(signedIn.accessToken) });
    expect(tokens.json().tokens).toEqual([]);
    const audited = await asAdmin(
      "GET",
      `/admin/audit?userId=${user.user.id}&type=admin_user_updated`,
    );
    expect(audited.json().events.map((e: { detail: unknown }) => e.detail)).toEqual([
      { by: admin.user.id, change: { disabled: false }, sessionsRevoked: 0, apiTokensDeleted: 1 },
      { by: admin.user.id, change: { disabled: true }, sessionsRevoked: 1, apiTokensDeleted: 0 },
    ]);
  });

  it("revokes every session of a user", async () => {
    const email = "many@example.com";
    await registerUser(app, { email, password: PASSWORD });
    const a = (await login(email)).json();
    const b = (await login(email)).json();
    const res = await asAdmin("POST", `/admin/users/${a.user.id}/sessions/revoke`);
    expect(res.statusCode).toBe(204);
    for (const t of [a, b]) {
      const me = await app.http.inject({ url: "/users/me", headers: bearer(t.accessToken) });
      expect(me.statusCode).toBe(401);
    }
    expect((await asAdmin("POST", "/admin/users/nobody/sessions/revoke")).statusCode).toBe(404);
  });

  it("never leaves the deployment without an enabled admin (409 conflict)", async () => {
    const self = `/admin/users/${admin.user.id}`;
    for (const [method, body] of [
      ["PATCH", { role: "user" }],
      ["PATCH", { disabled: true }],
      ["DELETE", undefined],
    ] as const) {
      const res = await asAdmin(method, self, body);
      expect(res.statusCode, `${method} ${JSON.stringify(body)}`).toBe(409);
      expect(res.json().code).toBe("conflict");
    }
    // Changes that keep the role are fine.
    expect((await asAdmin("PATCH", self, { tier: "pro" })).statusCode).toBe(200);

    // With a second admin, the first may step down; then the second is the last one.
    const other = await registerUser(app);
    expect(
      (await asAdmin("PATCH", `/admin/users/${other.user.id}`, { role: "admin" })).statusCode,
    ).toBe(200);
    expect((await asAdmin("PATCH", self, { role: "user" })).statusCode).toBe(200);
    // The demoted admin's own token no longer reaches admin routes (role read live).
    expect((await asAdmin("GET", "/admin/users")).statusCode).toBe(403);
    const last = await asAdmin(
      "DELETE",
      `/admin/users/${other.user.id}`,
      undefined,
      other.accessToken,
    );
    expect(last.statusCode).toBe(409);
  });

  it("audits admin actions with the acting admin", async () => {
    const user = await registerUser(app);
    await asAdmin("PATCH", `/admin/users/${user.user.id}`, { disabled: true });
    const res = await asAdmin("GET", `/admin/audit?userId=${user.user.id}&type=admin_user_updated`);
    expect(res.statusCode).toBe(200);
    const { events } = res.json();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: "admin_user_updated",
      userId: user.user.id,
      detail: {
        by: admin.user.id,
        change: { disabled: true },
        sessionsRevoked: 1,
        apiTokensDeleted: 0,
      },
    });
  });
});
