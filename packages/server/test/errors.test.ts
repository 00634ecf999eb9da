import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  json,
  parseRaw,
  rawRequest,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";

const PASSWORD = "correct horse battery";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ bodyLimitBytes: 1024 });
});
afterAll(() => app.close());

const b64url = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** Asserts RFC 9457 problem details with the contract's fields and nothing leaked. */
function expectProblem(res: LightMyRequestResponse, status: number, code?: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code: expect.any(String),
  });
  if (code) expect(body.code).toBe(code);
  expectNothingLeaked(res);
  return body as { code: string; detail: string; errors?: Array<{ path: string }> };
}

/** No stack frames, file paths, SQL or driver names in any response. */
function expectNothingLeaked(res: LightMyRequestResponse) {
  expect(res.body).not.toMatch(/\n\s+at |\bat [\w.<>]+ \(|node_modules|\.ts:\d+|file:\/\//);
  expect(res.body).not.toMatch(/\b(select|insert into|update \w+ set|delete from)\b/i);
  expect(res.body).not.toMatch(/sqlite|postgres|kysely|SQLSTATE/i);
}

const post = (url: string, payload: string, contentType = "application/json") =>
  app.http.inject({ method: "POST", url, payload, headers: { "content-type": contentType } });

describe("problem+json shape", () => {
  it("is used for 401, which names the Bearer scheme", async () => {
    const res = await app.http.inject({ url: "/users/me" });
    expectProblem(res, 401, "unauthenticated");
    expect(res.headers["www-authenticate"]).toBe('Bearer realm="latchkey"');
  });

  it("says error=invalid_token in the 401 challenge when a token was refused (RFC 6750 §3.1)", async () => {
    const garbled = await app.http.inject({ url: "/users/me", headers: bearer("not-a-jwt") });
    expectProblem(garbled, 401, "invalid_token");
    expect(garbled.headers["www-authenticate"]).toBe(
      'Bearer realm="latchkey", error="invalid_token", error_description="invalid_token"',
    );
    const { accessToken } = await registerUser(app, { email: "challenge@example.com" });
    await app.http.inject({ method: "POST", url: "/auth/logout", headers: bearer(accessToken) });
    const revoked = await app.http.inject({ url: "/users/me", headers: bearer(accessToken) });
    expectProblem(revoked, 401, "session_revoked");
    expect(revoked.headers["www-authenticate"]).toBe(
      'Bearer realm="latchkey", error="invalid_token", error_description="session_revoked"',
    );
    // A wrong password is no refused token: the bare challenge, as with no token at all.
    const login = await post(
      "/auth/login",
      JSON.stringify({ identifier: "challenge@example.com", password: "not the password" }),
    );
    expectProblem(login, 401, "invalid_credentials");
    expect(login.headers["www-authenticate"]).toBe('Bearer realm="latchkey"');
  });

  it("is used for 404 on an unknown route", async () => {
    const body = expectProblem(
      await app.http.inject({ url: "/no/such/route?x=1" }),
      404,
      "not_found",
    );
    expect(body.detail).not.toContain("x=1");
  });

  it("is used for 404 on a known path with an unknown method", async () => {
    expectProblem(await app.http.inject({ method: "PUT", url: "/auth/login" }), 404, "not_found");
  });

  it("is used for a malformed URL (regression: bad percent-encoding bypassed the handler)", async () => {
    expectProblem(await app.http.inject({ url: "/users/%E0%A4%A" }), 400, "validation_failed");
    expectProblem(await app.http.inject({ url: "/%E0%A4%A" }), 400, "validation_failed");
  });

  it("is used for 409", async () => {
    await registerUser(app, { email: "taken@example.com" });
    const res = await post(
      "/auth/register",
      JSON.stringify({ email: "taken@example.com", password: PASSWORD }),
    );
    expectProblem(res, 409, "conflict");
  });
});

describe("request bodies", () => {
  it("answers malformed JSON with 400 validation_failed, its errors naming the whole body", async () => {
    const res = await post("/auth/login", '{"identifier": "a", "password": ');
    const problem = expectProblem(res, 400, "validation_failed");
    expect(problem.errors).toEqual([{ path: "", message: "The body is not valid JSON" }]);
  });

  it("answers an empty JSON body with 400 validation_failed", async () => {
    expectProblem(await post("/auth/login", ""), 400, "validation_failed");
  });

  it("treats an empty JSON body as no body where none is needed (refresh by cookie)", async () => {
    const res = await post("/auth/refresh", "");
    expectProblem(res, 401, "unauthenticated");
  });

  it("answers a JSON null body with 400 validation_failed", async () => {
    expectProblem(await post("/auth/login", "null"), 400, "validation_failed");
  });

  it("refuses __proto__ keys (prototype poisoning) with 400", async () => {
    const res = await post(
      "/auth/login",
      '{"identifier":"a","password":"b","__proto__":{"isAdmin":true}}',
    );
    expectProblem(res, 400);
  });

  it("answers an unsupported content type with a 4xx problem", async () => {
    const xml = await post("/auth/login", "<login/>", "application/xml");
    expectProblem(xml, 415);
    const form = await post(
      "/auth/login",
      "identifier=a&password=b",
      "application/x-www-form-urlencoded",
    );
    expectProblem(form, 415);
  });

  it("answers text/plain with a 4xx problem, not a parsed login", async () => {
    const res = await post(
      "/auth/login",
      JSON.stringify({ identifier: "a", password: "b" }),
      "text/plain",
    );
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expectProblem(res, res.statusCode);
  });

  it("answers a body over the limit with 413 payload_too_large", async () => {
    const res = await post(
      "/auth/register",
      JSON.stringify({ email: "big@example.com", password: "x".repeat(2048) }),
    );
    expectProblem(res, 413, "payload_too_large");
  });

  it("refuses unknown fields", async () => {
    const res = await post(
      "/auth/register",
      JSON.stringify({ email: "x@example.com", password: PASSWORD, role: "admin" }),
    );
    const body = expectProblem(res, 400, "validation_failed");
    expect(body.errors?.map((e) => e.path)).toContain("role");
  });

  it.each([
    ["a number for the identifier", { identifier: 12345678, password: PASSWORD }, "identifier"],
    ["a number for the password", { identifier: "a@example.com", password: 12345678 }, "password"],
    [
      "a string for rememberMe",
      { identifier: "a@example.com", password: PASSWORD, rememberMe: "true" },
      "rememberMe",
    ],
    [
      "an array for the identifier",
      { identifier: ["a@example.com"], password: PASSWORD },
      "identifier",
    ],
  ])("does not coerce types: %s is 400", async (_why, body, field) => {
    const res = await post("/auth/login", JSON.stringify(body));
    const problem = expectProblem(res, 400, "validation_failed");
    expect(problem.errors?.map((e) => e.path)).toContain(field);
  });

  it("names a missing field", async () => {
    const res = await post("/auth/login", JSON.stringify({ identifier: "a@example.com" }));
    const problem = expectProblem(res, 400, "validation_failed");
    expect(problem.errors?.map((e) => e.path)).toContain("password");
  });
});

describe("odd credentials never cause a 500", () => {
  const me = (options: InjectOptions["headers"]) =>
    app.http.inject({ url: "/users/me", headers: options });

  const hugeHeaderJwt = `${b64url({ alg: "EdDSA", kid: "k".repeat(6000), typ: "at+jwt" })}.${b64url({ sub: "x" })}.${b64url("sig")}`;
  const cases: Array<[string, Record<string, string>]> = [
    ["an lk_access cookie of garbage", { cookie: "lk_access=garbage" }],
    ["an lk_access cookie with bad percent-encoding", { cookie: "lk_access=%E0%A4%A" }],
    ["an empty lk_access cookie and junk cookies", { cookie: "lk_access=; =; ;;; a" }],
    ["Basic credentials", { authorization: "Basic dXNlcjpwYXNz" }],
    ["a bare Bearer", { authorization: "Bearer " }],
    ["a JWT with a huge header", bearer(hugeHeaderJwt)],
    ["a JWT whose header is not JSON", bearer(`${b64url("not json")}.${b64url({})}.sig`)],
    [
      "a JWT whose kid is an object",
      bearer(`${b64url({ alg: "EdDSA", kid: { a: 1 } })}.${b64url({})}.c2ln`),
    ],
    [
      "an unsigned JWT (alg none)",
      bearer(`${b64url({ alg: "none", kid: "x" })}.${b64url({ sub: "x", typ: "access" })}.`),
    ],
    [
      "an HS256 JWT with an unknown kid",
      bearer(`${b64url({ alg: "HS256", kid: "nope" })}.${b64url({ sub: "x" })}.c2ln`),
    ],
    ["a JWT with too many segments", bearer("a.b.c.d.e")],
    ["a very long token", bearer("x".repeat(8000))],
  ];

  it.each(cases)("answers %s with 401", async (_why, headers) => {
    const res = await me(headers);
    const body = expectProblem(res, 401);
    expect(["invalid_token", "unauthenticated"]).toContain(body.code);
  });

  it("takes another Authorization scheme for no credential: 401 unauthenticated, or the cookie", async () => {
    expectProblem(await me({ authorization: "Basic dXNlcjpwYXNz" }), 401, "unauthenticated");
    expectProblem(await me({ authorization: "Bearer" }), 401, "invalid_token");
    const { accessToken } = await registerUser(app);
    const withCookie = await me({
      authorization: "Basic dXNlcjpwYXNz",
      cookie: `lk_access=${accessToken}`,
    });
    expect(withCookie.statusCode).toBe(200);
  });

  it("answers a forged token signed with our header but a bad signature with 401 invalid_token", async () => {
    const { accessToken } = await registerUser(app);
    const [header, payload] = accessToken.split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString());
    const forged = `${header}.${b64url({ ...claims, role: "admin" })}.${b64url("x".repeat(64))}`;
    expectProblem(await me(bearer(forged)), 401, "invalid_token");
  });

  it("answers a refresh with odd tokens with 401, never 500", async () => {
    for (const refreshToken of [
      "garbage",
      "a.b.c",
      "00000000-0000-0000-0000-000000000000.0.mac",
      "01890a5d-ac96-774b-bcce-b302099a8057.99999999999.mac",
      `${"x".repeat(200)}.1.${"y".repeat(200)}`,
    ]) {
      const res = await post("/auth/refresh", JSON.stringify({ refreshToken }));
      expectProblem(res, 401);
    }
  });

  it("answers an odd session id with 404, never 500", async () => {
    const { accessToken } = await registerUser(app);
    for (const id of ["%00", "'; drop table sessions; --", "x".repeat(64)]) {
      const res = await app.http.inject({
        method: "DELETE",
        url: `/sessions/${encodeURIComponent(id)}`,
        headers: bearer(accessToken),
      });
      expectProblem(res, 404, "not_found");
    }
    const tooLong = await app.http.inject({
      method: "DELETE",
      url: `/sessions/${"x".repeat(65)}`,
      headers: bearer(accessToken),
    });
    expectProblem(tooLong, 400, "validation_failed");
  });

  it("answers a path parameter longer than any route takes 400 validation_failed, not quoted back", async () => {
    // Fastify's router answered these 414, titled "Error", with the whole path as detail.
    const { accessToken } = await registerUser(app);
    for (const url of [`/sessions/${"x".repeat(2000)}`, `/admin/users/${"x".repeat(2000)}`]) {
      const body = expectProblem(
        await app.http.inject({ method: "DELETE", url, headers: bearer(accessToken) }),
        400,
        "validation_failed",
      );
      expect(body.detail).toBe("A path parameter is too long");
      expect(JSON.stringify(body)).not.toContain("xxxxxxxx");
    }
  });
});

const TEXT_MESSAGE = "must not contain U+0000 or an unpaired surrogate";

describe("U+0000 in text the server stores or looks up", () => {
  // PostgreSQL's text cannot hold NUL: these failed their query there (500) while SQLite
  // took them. Refused before any query now, the same on both databases.
  const NUL = "a\u0000b";

  it("is 400 validation_failed naming the field, in bodies, paths and queries", async () => {
    const user = await registerUser(app);
    const admin = await registerUser(app);
    await app.svc.store.users.adminUpdate(admin.user.id, { role: "admin" }, app.clock.now());
    const send = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, body?: unknown) =>
      app.http.inject({
        method,
        url,
        headers: {
          ...bearer(url.startsWith("/admin") ? admin.accessToken : user.accessToken),
          ...(body ? { "content-type": "application/json" } : {}),
        },
        ...(body ? { payload: JSON.stringify(body) } : {}),
      });
    const cases: Array<[string, Promise<LightMyRequestResponse>, string]> = [
      [
        "login",
        post("/auth/login", JSON.stringify({ identifier: NUL, password: PASSWORD })),
        "identifier",
      ],
      [
        "passkey options",
        post("/auth/webauthn/options", JSON.stringify({ identifier: NUL })),
        "identifier",
      ],
      ["token name", send("POST", "/tokens", { name: NUL, scopes: ["read"] }), "name"],
      ["passkey name", send("PATCH", "/webauthn/credentials/abc", { name: NUL }), "name"],
      ["session id", send("DELETE", "/sessions/a%00b"), "id"],
      ["token id", send("DELETE", "/tokens/a%00b"), "id"],
      ["passkey id", send("PATCH", "/webauthn/credentials/a%00b", { name: "key" }), "id"],
      ["user id", send("GET", "/admin/users/a%00b"), "id"],
      ["user search", send("GET", "/admin/users?search=a%00b"), "search"],
      ["audit filter", send("GET", "/admin/audit?type=a%00b"), "type"],
    ];
    for (const [what, res, path] of cases) {
      const body = expectProblem(await res, 400, "validation_failed");
      expect(body.errors, what).toContainEqual({ path, message: TEXT_MESSAGE });
    }
  });

  it("also refuses an unpaired surrogate, which neither database can store as sent", async () => {
    // JSON's "\ud800" escape decodes to a lone UTF-16 surrogate. SQLite kept its bytes
    // (served back as three U+FFFD), PostgreSQL one U+FFFD: a 201 that echoed the name as
    // sent, then a stored name that was neither, different on each database.
    const user = await registerUser(app);
    const send = (method: "POST" | "PATCH", url: string, body: unknown) =>
      app.http.inject({
        method,
        url,
        headers: { ...bearer(user.accessToken), "content-type": "application/json" },
        payload: JSON.stringify(body),
      });
    const cases: Array<[string, Promise<LightMyRequestResponse>, string]> = [
      ["token name", send("POST", "/tokens", { name: "a\ud800b", scopes: ["read"] }), "name"],
      [
        "token name, low half",
        send("POST", "/tokens", { name: "\udfffb", scopes: ["read"] }),
        "name",
      ],
      ["passkey name", send("PATCH", "/webauthn/credentials/abc", { name: "key\ud83d" }), "name"],
      [
        "login",
        send("POST", "/auth/login", { identifier: "a\ud800", password: PASSWORD }),
        "identifier",
      ],
    ];
    for (const [what, res, path] of cases) {
      const body = expectProblem(await res, 400, "validation_failed");
      expect(body.errors, what).toContainEqual({ path, message: TEXT_MESSAGE });
    }
    // A pair is one code point (U+1F600), stored and served back as sent.
    const ok = await send("POST", "/tokens", { name: "build \ud83d\ude00", scopes: ["read"] });
    expect(ok.statusCode).toBe(201);
    const list = await app.http.inject({ url: "/tokens", headers: bearer(user.accessToken) });
    expect(list.json().tokens.map((t: { name: string }) => t.name)).toContain("build \u{1F600}");
  });
});

describe("credentials come before bodies", () => {
  it("answers a protected route without credentials 401, whatever the body", async () => {
    expectProblem(await post("/tokens", ""), 401, "unauthenticated");
    expectProblem(await post("/tokens", "{"), 401, "unauthenticated");
    const patch = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      payload: "[]",
      headers: { "content-type": "application/json", ...bearer("garbage") },
    });
    expectProblem(patch, 401, "invalid_token");
  });

  it("refuses a cookie-authenticated write from a foreign origin 403 before reading its body", async () => {
    const { accessToken } = await registerUser(app);
    const res = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      payload: '{"username": 5}',
      headers: { "content-type": "application/json", cookie: `lk_access=${accessToken}` },
    });
    expectProblem(res, 403, "csrf_rejected");
  });

  it("answers an access token sent to /auth/refresh in the body 401 invalid_token", async () => {
    const { accessToken } = await registerUser(app);
    const res = await post("/auth/refresh", JSON.stringify({ refreshToken: accessToken }));
    expectProblem(res, 401, "invalid_token");
  });
});

describe("requests Node's HTTP parser refuses", () => {
  const raw = (request: string) => rawRequest(app, request);

  it("answers oversized headers 431 as problem+json", async () => {
    const answer = parseRaw(
      await raw(`GET /users/me HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`),
    );
    expect(answer.statusLine).toBe("HTTP/1.1 431 Request Header Fields Too Large");
    expect(answer.head).toMatch(/content-type: application\/problem\+json/i);
    expect(answer.body).toMatchObject({ status: 431, code: "payload_too_large" });
  });

  it("answers a body over the limit 413 and reads the rest, so the client sees the answer", async () => {
    // Closing mid-upload made clients still sending (fetch, browsers) see a broken pipe
    // instead of the 413. The connection now stays usable: the next request on it is
    // answered too.
    const body = "x".repeat(200_000);
    const answer = await raw(
      `POST /auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${body.length}\r\n\r\n${body}` +
        "GET /users/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(["413", "401"]);
    expect(answer).toContain('"code":"payload_too_large"');
  });

  it("serves an Upgrade request to another route as plain HTTP, then closes the connection", async () => {
    // These sockets leave Node's HTTP server; left open, enough of them exhaust the fds.
    for (const upgrade of ["foo", "websocket", "h2c"]) {
      const answer = await raw(
        `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(answer).toMatch(/connection: close/i);
    }
    const unauthenticated = parseRaw(
      await raw("GET /users/me HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"),
    );
    expect(unauthenticated.body).toMatchObject({ status: 401, code: "unauthenticated" });
  });

  it("answers CONNECT 404 not_found as problem+json, then closes the connection", async () => {
    // Node hands CONNECT over as a bare socket and, with nobody listening, dropped it
    // without any answer.
    for (const target of ["127.0.0.1:443", "/users/me"]) {
      const answer = parseRaw(await raw(`CONNECT ${target} HTTP/1.1\r\nHost: x\r\n\r\n`));
      expect(answer.statusLine).toBe("HTTP/1.1 404 Not Found");
      expect(answer.head).toMatch(/content-type: application\/problem\+json/i);
      expect(answer.body).toMatchObject({ status: 404, code: "not_found" });
    }
  });

  it("answers an Expect it cannot meet 417 as problem+json", async () => {
    const answer = parseRaw(
      await raw(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nExpect: junk\r\nContent-Type: application/json\r\n" +
          "Content-Length: 2\r\n\r\n{}",
      ),
    );
    expect(answer.statusLine).toBe("HTTP/1.1 417 Expectation Failed");
    expect(answer.head).toMatch(/content-type: application\/problem\+json/i);
    expect(answer.body).toMatchObject({ status: 417, code: "validation_failed" });
  });

  it("answers a garbled request 400 validation_failed as problem+json", async () => {
    const answer = parseRaw(await raw("GET /users/me HTTP/1.1\r\nno colon here\r\n\r\n"));
    expect(answer.statusLine).toBe("HTTP/1.1 400 Bad Request");
    expect(answer.body).toMatchObject({
      status: 400,
      code: "validation_failed",
      errors: [{ path: "", message: "The request is not valid HTTP" }],
    });
  });
});

describe("the Host header (RFC 9112 §3.2)", () => {
  const raw = async (request: string) => parseRaw(await rawRequest(app, request));
  const handshake =
    "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

  function expectHostRefused(answer: ReturnType<typeof parseRaw>, detail: string) {
    expect(answer.statusLine).toBe("HTTP/1.1 400 Bad Request");
    expect(answer.head).toMatch(/content-type: application\/problem\+json/i);
    expect(answer.head).toMatch(/x-content-type-options: nosniff/i);
    expect(answer.body).toMatchObject({
      status: 400,
      code: "validation_failed",
      detail,
      errors: [{ path: "headers.host", message: expect.any(String) }],
    });
  }

  it("refuses an HTTP/1.1 request without one 400 as problem+json (regression: Node's empty 400)", async () => {
    expectHostRefused(
      await raw("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"),
      "Missing Host header",
    );
  });

  it("refuses a request with two 400 as problem+json (regression: served)", async () => {
    expectHostRefused(
      await raw("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
      "More than one Host header",
    );
  });

  it("refuses a WebSocket handshake without one, then closes (regression: upgraded)", async () => {
    // rawRequest returns once the server has closed the connection.
    expectHostRefused(await raw(`${handshake}\r\n`), "Missing Host header");
  });

  it("serves HTTP/1.0 without one, which need not send it", async () => {
    const answer = await rawRequest(app, "GET /healthz HTTP/1.0\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
  });
});

describe("no leaks", () => {
  it("keeps stack traces, SQL and driver names out of every error above and these", async () => {
    const responses = await Promise.all([
      post("/auth/login", "{"),
      post("/auth/login", JSON.stringify({ identifier: "x".repeat(300), password: PASSWORD })),
      post("/auth/setup", JSON.stringify({ username: "'; --", password: PASSWORD })),
      app.http.inject({ method: "POST", url: "/auth/logout", ...json({ refreshToken: "x" }) }),
      app.http.inject({ url: "/%E0%A4%A" }),
    ]);
    for (const res of responses) {
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      expectProblem(res, res.statusCode);
    }
  });
});
