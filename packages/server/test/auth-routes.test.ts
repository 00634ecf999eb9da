import type { LightMyRequestResponse } from "fastify";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, registerUser, startTestApp, type TestApp } from "./helpers.js";

const PASSWORD = "correct horse battery";
const DAY_S = 86_400;

let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  app.http.inject({
    method: "POST",
    url,
    payload: JSON.stringify(body),
    headers: { "content-type": "application/json", ...headers },
  });

const me = (headers: Record<string, string>) => app.http.inject({ url: "/users/me", headers });

const login = (identifier: string, password = PASSWORD, extra: Record<string, unknown> = {}) =>
  post("/auth/login", { identifier, password, ...extra });

function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status, code });
}

function fieldErrors(res: LightMyRequestResponse): string[] {
  expectProblem(res, 400, "validation_failed");
  return (res.json().errors as Array<{ path: string }>).map((e) => e.path);
}

/** A cleared cookie has Max-Age=0 or an Expires in the past. */
function expectCleared(res: LightMyRequestResponse, name: string) {
  const cookie = res.cookies.find((c) => c.name === name);
  expect(cookie, `Set-Cookie for ${name}`).toBeDefined();
  const expired =
    cookie?.maxAge === 0 ||
    (cookie?.expires !== undefined && cookie.expires.getTime() < Date.now());
  expect(expired).toBe(true);
}

describe("POST /auth/setup", () => {
  it("creates the first admin with tokens (201)", async () => {
    const res = await post("/auth/setup", {
      username: "root",
      email: "root@example.com",
      password: PASSWORD,
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.user).toMatchObject({ username: "root", email: "root@example.com", role: "admin" });
    expect(body).toMatchObject({ expiresIn: 900, tokenType: "Bearer" });
    expect(typeof body.accessToken).toBe("string");
    expect(typeof body.refreshToken).toBe("string");
    expect((await me(bearer(body.accessToken))).json()).toMatchObject({ role: "admin" });
  });

  it("works without an email", async () => {
    const res = await post("/auth/setup", { username: "root", password: PASSWORD });
    expect(res.statusCode).toBe(201);
    expect(res.json().user).toMatchObject({ username: "root", email: null, role: "admin" });
  });

  it("refuses a second setup with 409 already_set_up", async () => {
    expect((await post("/auth/setup", { username: "root", password: PASSWORD })).statusCode).toBe(
      201,
    );
    const again = await post("/auth/setup", { username: "other", password: PASSWORD });
    expectProblem(again, 409, "already_set_up");
  });

  it("refuses setup once anyone has registered", async () => {
    await registerUser(app);
    const res = await post("/auth/setup", { username: "root", password: PASSWORD });
    expectProblem(res, 409, "already_set_up");
  });

  it("lets exactly one of several concurrent setups win (real HTTP)", async () => {
    const url = await app.listen();
    const attempts = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        fetch(`${url}/auth/setup`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: `admin${i}`, password: PASSWORD }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as { code: string } })),
      ),
    );
    const statuses = attempts.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    for (const loser of attempts.filter((a) => a.status === 409)) {
      expect(loser.body.code).toBe("already_set_up");
    }
  });
});

describe("POST /auth/register", () => {
  it("takes usernames of 2-50 letters, digits, dots, underscores and dashes", async () => {
    for (const username of ["ann.lee", "a_b-c", "x".repeat(50)]) {
      const res = await post("/auth/register", {
        email: `${username.slice(0, 20)}@example.com`,
        password: PASSWORD,
        username,
      });
      expect(res.statusCode).toBe(201);
    }
    for (const username of ["a", "x".repeat(51), "has space", "at@sign", "ünï"]) {
      const res = await post("/auth/register", {
        email: "u@example.com",
        password: PASSWORD,
        username,
      });
      expect(fieldErrors(res)).toContain("username");
    }
  });

  it("takes an email as browsers do (WHATWG): a dotless domain is one, garbage is not", async () => {
    for (const email of ["dev@localhost", "a.b+tag@mail.example.co.uk"]) {
      const res = await post("/auth/register", { email, password: PASSWORD });
      expect(res.statusCode).toBe(201);
    }
    for (const email of ["no-at-sign", "a@b@c.com", "a@-bad-.com", "space @example.com", "a@"]) {
      const res = await post("/auth/register", { email, password: PASSWORD });
      expectProblem(res, 400, "validation_failed");
      expect(fieldErrors(res)).toContain("email");
    }
  });

  it("answers 201 with the user and tokens per the contract", async () => {
    const res = await post("/auth/register", {
      email: "Ann@Example.com",
      password: PASSWORD,
      username: "ann",
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(
      ["accessToken", "expiresIn", "refreshToken", "sessionExpiresIn", "tokenType", "user"].sort(),
    );
    expect(body).toMatchObject({
      expiresIn: 900,
      sessionExpiresIn: 7 * DAY_S,
      tokenType: "Bearer",
    });
    expect(body.accessToken.split(".")).toHaveLength(3);
    expect(body.refreshToken.length).toBeGreaterThan(40);
    expect(body.user).toEqual({
      id: expect.any(String),
      email: "ann@example.com",
      emailVerified: false,
      username: "ann",
      role: "user",
      tier: "free",
      subscriptionStatus: "none",
      guest: false,
      mfaEnabled: false,
      identities: [],
      allowedIps: [],
      sessionDurationMinutes: null,
      singleSession: false,
      screenLockMinutes: null,
      limits: { apiTokens: 10 },
      createdAt: "2026-01-01T00:00:00.000Z",
    });
  });

  it("refuses a duplicate email, whatever its case (409 conflict)", async () => {
    await registerUser(app, { email: "dup@example.com" });
    const res = await post("/auth/register", { email: "DUP@Example.COM", password: PASSWORD });
    expectProblem(res, 409, "conflict");
  });

  it("refuses a duplicate username, whatever its case (409 conflict)", async () => {
    await registerUser(app, { username: "Zed" });
    const res = await post("/auth/register", {
      email: "zed2@example.com",
      password: PASSWORD,
      username: "zED",
    });
    expectProblem(res, 409, "conflict");
  });

  it("rejects a malformed email", async () => {
    const res = await post("/auth/register", { email: "not-an-email", password: PASSWORD });
    expect(fieldErrors(res)).toContain("email");
  });

  it("rejects a password shorter than 8 characters", async () => {
    const res = await post("/auth/register", { email: "a@example.com", password: "1234567" });
    expect(fieldErrors(res)).toContain("password");
  });

  it("rejects a password longer than 128 code points", async () => {
    const res = await post("/auth/register", {
      email: "a@example.com",
      password: "\u{1F600}".repeat(129),
    });
    expect(fieldErrors(res)).toContain("password");
  });

  it("counts password length in code points, not UTF-16 units", async () => {
    const password = "\u{1F600}".repeat(128); // 256 UTF-16 units
    const res = await post("/auth/register", { email: "emoji@example.com", password });
    expect(res.statusCode).toBe(201);
    expect((await login("emoji@example.com", password)).statusCode).toBe(200);
  });

  it.each([
    ["too short", "a"],
    ["spaces and punctuation", "bad name!"],
    ["too long", "x".repeat(51)],
  ])("rejects a username that is %s", async (_why, username) => {
    const res = await post("/auth/register", {
      email: "u@example.com",
      password: PASSWORD,
      username,
    });
    expect(fieldErrors(res)).toContain("username");
  });

  it("lists every bad field at once", async () => {
    const res = await post("/auth/register", { email: "nope", password: PASSWORD, username: "!" });
    expect(fieldErrors(res)).toEqual(expect.arrayContaining(["email", "username"]));
  });

  it("normalises passwords with NFKC: a fullwidth password logs in typed in ASCII", async () => {
    await registerUser(app, { email: "wide@example.com", password: "Ｗｉｄｅ Ｋｅｙｓ ４２" });
    expect((await login("wide@example.com", "Wide Keys 42")).statusCode).toBe(200);
  });

  it("normalises passwords with NFKC: decomposed and composed forms are one password", async () => {
    await registerUser(app, { email: "cafe@example.com", password: "cafe\u0301 au lait" });
    expect((await login("cafe@example.com", "caf\u00e9 au lait")).statusCode).toBe(200);
  });
});

describe("POST /auth/login", () => {
  beforeEach(async () => {
    await registerUser(app, { email: "bob@example.com", username: "BobSmith" });
  });

  it("signs in by email, case-insensitively", async () => {
    const res = await login("BOB@Example.com");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ user: { email: "bob@example.com" }, tokenType: "Bearer" });
  });

  it("signs in by username, case-insensitively", async () => {
    const res = await login("bobsmith");
    expect(res.statusCode).toBe(200);
    expect(res.json().user.username).toBe("BobSmith");
    expect((await me(bearer(res.json().accessToken))).statusCode).toBe(200);
  });

  it("answers a wrong password and an unknown user with the same 401 body", async () => {
    const wrong = await login("bob@example.com", "not the password");
    const unknown = await login("nobody@example.com", "not the password");
    const unknownName = await login("nobody", "not the password");
    expectProblem(wrong, 401, "invalid_credentials");
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json()).toEqual(wrong.json());
    expect(unknownName.json()).toEqual(wrong.json());
  });

  it("gives a 7-day session by default and a 90-day one with rememberMe", async () => {
    const plain = await login("bob@example.com");
    const remembered = await login("bob@example.com", PASSWORD, { rememberMe: true });
    expect(plain.json().sessionExpiresIn).toBe(7 * DAY_S);
    expect(remembered.json().sessionExpiresIn).toBe(90 * DAY_S);
    expect(remembered.json().expiresIn).toBe(900);
  });
});

describe("GET /users/me", () => {
  let tokens: Awaited<ReturnType<typeof registerUser>>;
  beforeEach(async () => {
    tokens = await registerUser(app, { username: "meuser" });
  });

  it("accepts a Bearer access token", async () => {
    const res = await me(bearer(tokens.accessToken));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: tokens.user.id, username: "meuser" });
  });

  it("accepts the lk_access cookie", async () => {
    const res = await me({ cookie: `lk_access=${tokens.accessToken}` });
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(tokens.user.id);
  });

  it("answers 401 unauthenticated without a token", async () => {
    expectProblem(await me({}), 401, "unauthenticated");
  });

  it("answers 401 invalid_token for a garbage token", async () => {
    expectProblem(await me(bearer("garbage")), 401, "invalid_token");
    expectProblem(await me(bearer("a.b.c")), 401, "invalid_token");
  });

  it.each([
    ["a bare scheme", "Bearer"],
    ["two tokens", "Bearer one two"],
  ])(
    "answers 401 invalid_token for a malformed Bearer header (%s)",
    async (_why, authorization) => {
      expectProblem(await me({ authorization }), 401, "invalid_token");
    },
  );

  it.each([
    ["another scheme", `Token ${"x".repeat(20)}`],
    ["no scheme", "abc.def.ghi"],
  ])(
    "answers 401 unauthenticated for an Authorization header of no Bearer (%s)",
    async (_why, authorization) => {
      expectProblem(await me({ authorization }), 401, "unauthenticated");
    },
  );

  it("refuses a refresh token used as an access token", async () => {
    expectProblem(await me(bearer(tokens.refreshToken)), 401, "invalid_token");
  });
});

describe("POST /auth/logout", () => {
  let tokens: Awaited<ReturnType<typeof registerUser>>;
  beforeEach(async () => {
    tokens = await registerUser(app, { email: "out@example.com" });
  });

  it("ends the session of the access token, clears both cookies (204)", async () => {
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(tokens.accessToken),
    });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe("");
    expectCleared(res, "lk_access");
    expectCleared(res, "lk_refresh");

    expectProblem(await me(bearer(tokens.accessToken)), 401, "session_revoked");
    const refreshed = await post("/auth/refresh", { refreshToken: tokens.refreshToken });
    expect(refreshed.statusCode).toBe(401);
  });

  it("is idempotent: logging out of an ended session still answers 204 and clears cookies", async () => {
    const first = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(tokens.accessToken),
    });
    expect(first.statusCode).toBe(204);
    const again = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(tokens.accessToken),
    });
    expect(again.statusCode).toBe(204);
    expectCleared(again, "lk_access");
    expectCleared(again, "lk_refresh");
  });

  it("refuses a forged refresh token and a forged access token (401)", async () => {
    const forgedRefresh = `${tokens.refreshToken.split(".").slice(0, 2).join(".")}.${"A".repeat(43)}`;
    expect((await post("/auth/logout", { refreshToken: forgedRefresh })).statusCode).toBe(401);
    const forgedAccess = `${tokens.accessToken.slice(0, -4)}AAAA`;
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(forgedAccess),
    });
    expectProblem(res, 401, "invalid_token");
    expect((await me(bearer(tokens.accessToken))).statusCode).toBe(200);
  });

  it("ends the session of a refresh token sent alone in the body", async () => {
    const res = await post("/auth/logout", { refreshToken: tokens.refreshToken });
    expect(res.statusCode).toBe(204);
    expectProblem(await me(bearer(tokens.accessToken)), 401, "session_revoked");
    expect((await post("/auth/refresh", { refreshToken: tokens.refreshToken })).statusCode).toBe(
      401,
    );
  });

  it("ends the session of a refresh token sent as Bearer", async () => {
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(tokens.refreshToken),
    });
    expect(res.statusCode).toBe(204);
    expectProblem(await me(bearer(tokens.accessToken)), 401, "session_revoked");
  });

  it("falls back to the refresh cookie when the access cookie is mangled", async () => {
    const cookie = `lk_access=garbage; lk_refresh=${tokens.refreshToken}`;
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: { cookie, origin: "http://latchkey.test" },
    });
    expect(res.statusCode).toBe(204);
    expectCleared(res, "lk_access");
    expectCleared(res, "lk_refresh");
    expectProblem(await me(bearer(tokens.accessToken)), 401, "session_revoked");
  });

  it("answers an expired access token without a refresh token with 401 token_expired", async () => {
    app.clock.advance(16 * 60 * 1000);
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(tokens.accessToken),
    });
    expectProblem(res, 401, "token_expired");
  });

  it("leaves the user's other sessions alone", async () => {
    const other = (await login("out@example.com")).json();
    await post("/auth/logout", { refreshToken: tokens.refreshToken });
    expect((await me(bearer(other.accessToken))).statusCode).toBe(200);
  });

  it("answers 401 without any token", async () => {
    const res = await app.http.inject({ method: "POST", url: "/auth/logout" });
    expectProblem(res, 401, "unauthenticated");
  });

  it("answers 401 for a refresh token it never issued", async () => {
    const res = await post("/auth/logout", { refreshToken: "forged.0.token" });
    expect(res.statusCode).toBe(401);
  });
});

describe("POST /auth/logout/all", () => {
  it("revokes every session of the user and no one else's", async () => {
    const first = await registerUser(app, { email: "all@example.com" });
    const second = (await login("all@example.com")).json();
    const third = (await login("all@example.com", PASSWORD, { rememberMe: true })).json();
    const stranger = await registerUser(app);

    const res = await app.http.inject({
      method: "POST",
      url: "/auth/logout/all",
      headers: bearer(second.accessToken),
    });
    expect(res.statusCode).toBe(204);
    expectCleared(res, "lk_access");

    for (const t of [first, second, third]) {
      expectProblem(await me(bearer(t.accessToken)), 401, "session_revoked");
      expect((await post("/auth/refresh", { refreshToken: t.refreshToken })).statusCode).toBe(401);
    }
    expect((await me(bearer(stranger.accessToken))).statusCode).toBe(200);
    expect((await post("/auth/refresh", { refreshToken: stranger.refreshToken })).statusCode).toBe(
      200,
    );
  });

  it("requires an access token", async () => {
    const res = await app.http.inject({ method: "POST", url: "/auth/logout/all" });
    expectProblem(res, 401, "unauthenticated");
  });
});
