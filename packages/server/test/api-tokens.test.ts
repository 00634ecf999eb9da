import { createHash } from "node:crypto";
import type { LightMyRequestResponse } from "fastify";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SCOPE_GRANTS, scopesGrant } from "../src/domain/api-token.js";
import { bearer, json, openAppDb, registerUser, startTestApp, type TestApp } from "./helpers.js";

const START = Date.parse("2026-01-01T00:00:00Z");
const DAY_MS = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const ALL_SCOPES = ["profile:read", "sessions:read", "sessions:write"];

interface TokenView {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
}
interface CreatedToken {
  id: string;
  token: string;
  prefix: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
}

let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

async function createToken(
  accessToken: string,
  body: { name?: string; scopes?: string[]; expiresInDays?: number } = {},
): Promise<CreatedToken> {
  const res = await app.http.inject({
    method: "POST",
    url: "/tokens",
    ...json({ name: "ci", scopes: ["profile:read"], ...body }),
    headers: { "content-type": "application/json", ...bearer(accessToken) },
  });
  expect(res.statusCode).toBe(201);
  return res.json();
}

async function listTokens(accessToken: string): Promise<TokenView[]> {
  const res = await app.http.inject({ url: "/tokens", headers: bearer(accessToken) });
  expect(res.statusCode).toBe(200);
  return res.json().tokens;
}

const deleteToken = (accessToken: string, id: string) =>
  app.http.inject({ method: "DELETE", url: `/tokens/${id}`, headers: bearer(accessToken) });

const me = (token: string) => app.http.inject({ url: "/users/me", headers: bearer(token) });

function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status, code });
}

describe("POST /tokens and GET /tokens", () => {
  it("shows the secret once, and lists the token without it", async () => {
    const { accessToken } = await registerUser(app);
    const created = await createToken(accessToken, {
      name: "deploy bot",
      scopes: ["profile:read", "sessions:read"],
    });
    expect(created).toEqual({
      id: expect.any(String),
      token: expect.stringMatching(/^lk_[A-Za-z0-9_-]{43}$/),
      // Where the token starts, so that `token.startsWith(prefix)` tells it among others.
      prefix: created.token.slice(0, 11),
      name: "deploy bot",
      scopes: ["profile:read", "sessions:read"],
      createdAt: iso(START),
      lastUsedAt: null,
      expiresAt: null,
    });

    const res = await app.http.inject({ url: "/tokens", headers: bearer(accessToken) });
    expect(res.body).not.toContain(created.token);
    expect(res.body).not.toContain(created.token.slice(11));
    expect(res.json().tokens).toEqual([
      {
        id: created.id,
        name: "deploy bot",
        prefix: created.prefix,
        scopes: ["profile:read", "sessions:read"],
        createdAt: iso(START),
        lastUsedAt: null,
        expiresAt: null,
      },
    ]);
  });

  it("keeps only the SHA-256 of the secret at rest", async () => {
    const { accessToken } = await registerUser(app);
    const created = await createToken(accessToken);
    const db = await openAppDb(app);
    try {
      const rows = await db.kysely.selectFrom("api_tokens").selectAll().execute();
      expect(rows).toHaveLength(1);
      const row = rows[0];
      expect(row?.token_hash).toBe(createHash("sha256").update(created.token).digest("base64url"));
      expect(JSON.stringify(rows)).not.toContain(created.token.slice(3));
    } finally {
      await db.close();
    }
  });

  it("lists only the caller's tokens, newest first, with expiry", async () => {
    const alice = await registerUser(app);
    const bob = await registerUser(app);
    await createToken(alice.accessToken, { name: "first" });
    app.clock.advance(1000);
    await createToken(alice.accessToken, { name: "second", expiresInDays: 30 });
    await createToken(bob.accessToken, { name: "bob's" });

    const tokens = await listTokens(alice.accessToken);
    expect(tokens.map((t) => t.name)).toEqual(["second", "first"]);
    expect(tokens[0]?.expiresAt).toBe(iso(START + 1000 + 30 * DAY_MS));
  });

  it.each([
    ["no scopes", { scopes: [] }],
    ["an unknown scope", { scopes: ["admin"] }],
    ["a repeated scope", { scopes: ["profile:read", "profile:read"] }],
    ["an empty name", { name: "" }],
    ["a name of spaces only", { name: "   " }],
    ["a name over 100 characters", { name: "x".repeat(101) }],
    ["expiresInDays 0", { expiresInDays: 0 }],
    ["expiresInDays over 3650", { expiresInDays: 3651 }],
  ])("refuses %s (400)", async (_case, patch) => {
    const { accessToken } = await registerUser(app);
    const res = await app.http.inject({
      method: "POST",
      url: "/tokens",
      ...json({ name: "ci", scopes: ["profile:read"], ...patch }),
      headers: { "content-type": "application/json", ...bearer(accessToken) },
    });
    expectProblem(res, 400, "validation_failed");
  });

  it("requires a session", async () => {
    expectProblem(await app.http.inject({ url: "/tokens" }), 401, "unauthenticated");
  });
});

describe("authenticating with an API token", () => {
  it("acts as the token's user within its scopes", async () => {
    const { accessToken, user } = await registerUser(app);
    const { token } = await createToken(accessToken, { scopes: ["profile:read"] });

    const res = await me(token);
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(user.id);

    const sessions = await app.http.inject({ url: "/sessions", headers: bearer(token) });
    expectProblem(sessions, 403, "forbidden");
    expect(sessions.json().detail).toContain("sessions:read");
  });

  it("reads and revokes sessions with the sessions scopes; none of them is current", async () => {
    const { accessToken } = await registerUser(app);
    const { token } = await createToken(accessToken, {
      scopes: ["sessions:read", "sessions:write"],
    });
    const list = await app.http.inject({ url: "/sessions", headers: bearer(token) });
    expect(list.statusCode).toBe(200);
    const [session] = list.json().sessions;
    expect(session.current).toBe(false);

    const revoked = await app.http.inject({
      method: "DELETE",
      url: `/sessions/${session.id}`,
      headers: bearer(token),
    });
    expect(revoked.statusCode).toBe(204);
    expectProblem(await me(accessToken), 401, "session_revoked");
  });

  it("is refused on token management, logout and logout/all, whatever its scopes", async () => {
    const { accessToken } = await registerUser(app);
    const { token, id } = await createToken(accessToken, { scopes: ALL_SCOPES });
    const refused = [
      await app.http.inject({ url: "/tokens", headers: bearer(token) }),
      await app.http.inject({
        method: "POST",
        url: "/tokens",
        ...json({ name: "child", scopes: ["profile:read"] }),
        headers: { "content-type": "application/json", ...bearer(token) },
      }),
      await deleteToken(token, id),
      await app.http.inject({ method: "POST", url: "/auth/logout", headers: bearer(token) }),
      await app.http.inject({ method: "POST", url: "/auth/logout/all", headers: bearer(token) }),
    ];
    for (const res of refused) {
      expectProblem(res, 403, "forbidden");
      expect(res.json().detail).toBe("This route does not accept API tokens");
    }
    expect(await listTokens(accessToken)).toHaveLength(1);
    expect((await me(accessToken)).statusCode).toBe(200);
  });

  it("refuses an unknown token", async () => {
    expectProblem(await me(`lk_${"A".repeat(43)}`), 401, "invalid_token");
  });

  it("stops working at once when deleted, though its lookup is cached", async () => {
    const { accessToken } = await registerUser(app);
    const { token, id } = await createToken(accessToken);
    expect((await me(token)).statusCode).toBe(200); // now cached

    expect((await deleteToken(accessToken, id)).statusCode).toBe(204);
    expectProblem(await me(token), 401, "invalid_token");
    expect(await listTokens(accessToken)).toEqual([]);
  });

  it("stops working when it expires", async () => {
    const { accessToken } = await registerUser(app);
    const { token } = await createToken(accessToken, { expiresInDays: 1 });
    app.clock.advance(DAY_MS - 1);
    expect((await me(token)).statusCode).toBe(200);
    app.clock.advance(1);
    expectProblem(await me(token), 401, "invalid_token");
  });

  it("follows the user's disabled flag", async () => {
    const { accessToken, user } = await registerUser(app);
    const { token } = await createToken(accessToken);
    expect((await me(token)).statusCode).toBe(200);
    const db = await openAppDb(app);
    try {
      await db.kysely.updateTable("users").set({ disabled: 1 }).where("id", "=", user.id).execute();
    } finally {
      await db.close();
    }
    app.svc.sessions.userChanged(user.id); // what an admin change publishes
    expectProblem(await me(token), 403, "account_disabled");
  });

  it("records lastUsedAt at most once a minute", async () => {
    const { accessToken } = await registerUser(app);
    const a = await createToken(accessToken, { name: "a" });
    const lastUsed = async (id: string) =>
      (await listTokens(accessToken)).find((t) => t.id === id)?.lastUsedAt;
    // The write runs off the response path: wait for the row, not for time.
    const settle = (id: string, expected: string) =>
      vi.waitFor(async () => expect(await lastUsed(id)).toBe(expected));

    expect((await me(a.token)).statusCode).toBe(200);
    await settle(a.id, iso(START));

    app.clock.advance(30_000); // within the minute: not recorded
    expect((await me(a.token)).statusCode).toBe(200);
    // A second token used now is recorded; once its write landed, a's would have too.
    const b = await createToken(accessToken, { name: "b" });
    expect((await me(b.token)).statusCode).toBe(200);
    await settle(b.id, iso(START + 30_000));
    expect(await lastUsed(a.id)).toBe(iso(START));

    app.clock.advance(31_000); // 61 s after the last write
    expect((await me(a.token)).statusCode).toBe(200);
    await settle(a.id, iso(START + 61_000));
  });
});

describe("scope grammar: resource:action, a bare resource, a bare action, *", () => {
  const postToken = (accessToken: string, scopes: unknown) =>
    app.http.inject({
      method: "POST",
      url: "/tokens",
      ...json({ name: "ci", scopes }),
      headers: { "content-type": "application/json", ...bearer(accessToken) },
    });
  const introspectWith = (caller: string, token: string) =>
    app.http.inject({
      method: "POST",
      url: "/auth/introspect",
      ...json({ token }),
      headers: { "content-type": "application/json", ...bearer(caller) },
    });

  // [scopes, GET /users/me, GET /sessions, DELETE /sessions/:id, POST /auth/introspect]
  it.each([
    [["read"], true, true, false, false],
    [["profile"], true, false, false, false],
    [["sessions"], false, true, true, false],
    [["write"], false, false, true, false],
    [["*"], true, true, true, true],
    [["introspect"], false, false, false, true],
    [["profile:read", "write"], true, false, true, false],
  ])("%j: me %s, list sessions %s, revoke a session %s, introspect %s", async (scopes, ...can) => {
    const [canMe, canList, canRevoke, canIntrospect] = can;
    const { accessToken, user } = await registerUser(app);
    const created = await postToken(accessToken, scopes);
    expect(created.statusCode).toBe(201);
    const { token, id } = created.json<CreatedToken>();
    // Stored and shown as given.
    expect(created.json().scopes).toEqual(scopes);
    expect((await listTokens(accessToken)).find((t) => t.id === id)?.scopes).toEqual(scopes);

    // Twice each: the first answer comes from the database, the second from the cache.
    for (let round = 0; round < 2; round++) {
      const meRes = await me(token);
      if (canMe) expect(meRes.json().id).toBe(user.id);
      else expectProblem(meRes, 403, "forbidden");

      const list = await app.http.inject({ url: "/sessions", headers: bearer(token) });
      if (canList) expect(list.statusCode).toBe(200);
      else {
        expectProblem(list, 403, "forbidden");
        expect(list.json().detail).toContain("`sessions:read`");
      }

      const introspected = await introspectWith(token, accessToken);
      if (canIntrospect) expect(introspected.json()).toMatchObject({ active: true, sub: user.id });
      else expectProblem(introspected, 403, "forbidden");
    }

    const sessions = await app.http.inject({ url: "/sessions", headers: bearer(accessToken) });
    const [session] = sessions.json().sessions;
    const revoke = () =>
      app.http.inject({ method: "DELETE", url: `/sessions/${session.id}`, headers: bearer(token) });
    if (canRevoke) {
      expect((await revoke()).statusCode).toBe(204);
      expectProblem(await me(accessToken), 401, "session_revoked");
    } else {
      const refused = await revoke();
      expectProblem(refused, 403, "forbidden");
      expect(refused.json().detail).toContain("`write`");
      expect((await me(accessToken)).statusCode).toBe(200);
    }
  });

  it.each([
    [["reed"], "scopes.0"],
    [["Read"], "scopes.0"],
    [["READ"], "scopes.0"],
    [["profile:write"], "scopes.0"],
    [["profiles"], "scopes.0"],
    [["session:read"], "scopes.0"],
    [["sessions:*"], "scopes.0"],
    [["*:read"], "scopes.0"],
    [[" *"], "scopes.0"],
    [["all"], "scopes.0"],
    [["introspect:read"], "scopes.0"],
    [["read", "bogus"], "scopes.1"],
  ])("refuses %j (400, naming the accepted forms)", async (scopes, path) => {
    const { accessToken } = await registerUser(app);
    const res = await postToken(accessToken, scopes);
    expectProblem(res, 400, "validation_failed");
    const { detail, errors } = res.json();
    expect(errors).toEqual([{ path, message: expect.stringContaining("is not a scope") }]);
    for (const form of ["resource:action", "profile:read", "sessions", "read", "`*`"]) {
      expect(errors[0].message).toContain(form);
    }
    expect(detail).toContain(path);
    expect(await listTokens(accessToken)).toEqual([]);
  });

  it("refuses an empty list and a repeated scope in any form (400)", async () => {
    const { accessToken } = await registerUser(app);
    const empty = await postToken(accessToken, []);
    expectProblem(empty, 400, "validation_failed");
    expect(empty.json().errors).toEqual([
      { path: "scopes", message: expect.stringMatching(/^must name at least one scope; .*`\*`/) },
    ]);
    for (const scopes of [
      ["read", "read"],
      ["*", "*"],
    ]) {
      const res = await postToken(accessToken, scopes);
      expectProblem(res, 400, "validation_failed");
      expect(res.json().errors[0].path).toBe("scopes");
    }
    expect(await listTokens(accessToken)).toEqual([]);
  });

  it("a `*` token is still refused where API tokens never go", async () => {
    const { accessToken } = await registerUser(app);
    const { token, id } = await createToken(accessToken, { scopes: ["*"] });
    const withBody = (method: "POST" | "PATCH", url: string, body: unknown) =>
      app.http.inject({
        method,
        url,
        ...json(body),
        headers: { "content-type": "application/json", ...bearer(token) },
      });
    const refused = [
      await app.http.inject({ url: "/tokens", headers: bearer(token) }),
      await withBody("POST", "/tokens", { name: "child", scopes: ["*"] }),
      await deleteToken(token, id),
      await app.http.inject({ method: "POST", url: "/auth/logout/all", headers: bearer(token) }),
      await app.http.inject({ method: "POST", url: "/mfa/totp/setup", headers: bearer(token) }),
      await withBody("POST", "/auth/step-up", { password: "whatever it is" }),
      await withBody("PATCH", "/users/me", { username: "renamed" }),
    ];
    for (const res of refused) {
      expectProblem(res, 403, "forbidden");
      expect(res.json().detail).toBe("This route does not accept API tokens");
    }
    expect(await listTokens(accessToken)).toHaveLength(1);
  });

  it("one pure function decides (domain scopesGrant)", () => {
    expect(SCOPE_GRANTS).toEqual([
      "profile:read",
      "sessions:read",
      "sessions:write",
      "introspect",
      "profile",
      "sessions",
      "read",
      "write",
      "*",
    ]);
    expect(scopesGrant(["read"], "profile:read")).toBe(true);
    expect(scopesGrant(["read"], "sessions:write")).toBe(false);
    expect(scopesGrant(["read"], "introspect")).toBe(false);
    expect(scopesGrant(["sessions"], "sessions:write")).toBe(true);
    expect(scopesGrant(["sessions"], "profile:read")).toBe(false);
    expect(scopesGrant(["*"], "introspect")).toBe(true);
    expect(scopesGrant(["introspect"], "profile:read")).toBe(false);
    expect(scopesGrant([], "profile:read")).toBe(false);
    // Unknown names (a typo that predates validation, a newer version's scope) grant nothing.
    expect(scopesGrant(["Read", "profile:*", "sessions:read "], "profile:read")).toBe(false);
    expect(scopesGrant(["read:profile"], "profile:read")).toBe(false);
  });
});

describe("DELETE /tokens/:id", () => {
  it("answers 404 for another user's token and leaves it working", async () => {
    const alice = await registerUser(app);
    const mallory = await registerUser(app);
    const { token, id } = await createToken(alice.accessToken);
    expectProblem(await deleteToken(mallory.accessToken, id), 404, "not_found");
    expect((await me(token)).statusCode).toBe(200);
  });

  it("answers 404 for an unknown or already deleted token", async () => {
    const { accessToken } = await registerUser(app);
    const { id } = await createToken(accessToken);
    expect((await deleteToken(accessToken, id)).statusCode).toBe(204);
    expectProblem(await deleteToken(accessToken, id), 404, "not_found");
    expectProblem(await deleteToken(accessToken, "not-a-token"), 404, "not_found");
  });
});

describe("tier limits", () => {
  it("caps live API tokens at the tier's apiTokens limit (403 forbidden)", async () => {
    await app.close();
    app = await startTestApp({ tiers: { free: { apiTokens: 2 } } });
    const { accessToken } = await registerUser(app);
    const create = (name: string) =>
      app.http.inject({
        method: "POST",
        url: "/tokens",
        headers: { ...bearer(accessToken), "content-type": "application/json" },
        payload: JSON.stringify({ name, scopes: ["profile:read"] }),
      });
    expect((await create("one")).statusCode).toBe(201);
    const second = await create("two");
    expect(second.statusCode).toBe(201);
    const refused = await create("three");
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: "forbidden" });
    const { id } = second.json<{ id: string }>();
    await app.http.inject({ method: "DELETE", url: `/tokens/${id}`, headers: bearer(accessToken) });
    expect((await create("three")).statusCode).toBe(201);
  });

  it("holds under concurrent creations (count and insert are one step)", async () => {
    await app.close();
    app = await startTestApp({ tiers: { free: { apiTokens: 3 } } });
    await app.listen();
    const { accessToken } = await registerUser(app);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        fetch(`${app.url}/tokens`, {
          method: "POST",
          headers: { ...bearer(accessToken), "content-type": "application/json" },
          body: JSON.stringify({ name: `t${i}`, scopes: ["profile:read"] }),
        }).then((r) => r.status),
      ),
    );
    expect(answers.filter((s) => s === 201)).toHaveLength(3);
    expect(answers.filter((s) => s === 403)).toHaveLength(5);
  });
});
