import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, postJson, registerUser, startTestApp, type TestApp } from "./helpers.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("OpenAPI document", () => {
  it("declares the content types the server sends: problem+json for errors, text for metrics", async () => {
    type Responses = Record<string, { content?: Record<string, unknown> }>;
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, { responses: Responses }>>;
    }>();
    const login = doc.paths["/auth/login"]?.post?.responses ?? {};
    expect(Object.keys(login["200"]?.content ?? {})).toEqual(["application/json"]);
    expect(Object.keys(login["401"]?.content ?? {})).toEqual(["application/problem+json"]);
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const { responses } of Object.values(operations)) {
        for (const [status, response] of Object.entries(responses)) {
          if (Number(status) >= 400 && response.content && path !== "/readyz") {
            expect(Object.keys(response.content)).toEqual(["application/problem+json"]);
          }
        }
      }
    }
    const metrics = doc.paths["/metrics"]?.get?.responses ?? {};
    expect(Object.keys(metrics["200"]?.content ?? {})).toEqual(["text/plain; version=0.0.4"]);
  });

  it("documents /readyz's 503 as the readiness report it sends, not as a problem", async () => {
    // Regression: every status >= 400 was relabelled problem+json, this one included.
    type Media = Record<string, { schema?: { required?: string[] } }>;
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, { responses: Record<string, { content?: Media }> }>>;
    }>();
    const ready = doc.paths["/readyz"]?.get?.responses ?? {};
    const unavailable = ready["503"]?.content ?? {};
    expect(Object.keys(unavailable)).toEqual(["application/json"]);
    expect(unavailable["application/json"]?.schema?.required).toEqual(["status", "checks", "mail"]);
  });

  it("is OpenAPI 3.1, generated from the route schemas, with every route of the server", async () => {
    const res = await app.http.inject({ url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
    expect(doc.openapi).toBe("3.1.0");
    for (const [path, method] of [
      ["/auth/register", "post"],
      ["/auth/login", "post"],
      ["/auth/refresh", "post"],
      ["/users/me", "patch"],
      ["/sessions/{id}", "delete"],
      ["/mfa/totp/setup", "post"],
      ["/tokens", "post"],
      ["/.well-known/jwks.json", "get"],
      ["/admin/users", "get"],
      ["/admin/users/{id}", "patch"],
      ["/admin/users/{id}/sessions/revoke", "post"],
      ["/admin/audit", "get"],
      ["/metrics", "get"],
      ["/webauthn/register/options", "post"],
      ["/webauthn/register/verify", "post"],
      ["/webauthn/credentials", "get"],
      ["/webauthn/credentials/{id}", "patch"],
      ["/webauthn/credentials/{id}", "delete"],
      ["/auth/webauthn/options", "post"],
      ["/auth/webauthn/verify", "post"],
      ["/auth/login/mfa/webauthn/options", "post"],
      ["/auth/step-up/webauthn/options", "post"],
      ["/auth/introspect", "post"],
      ["/ws", "get"],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toBeDefined();
    }
  });

  it("marks a body optional where the route works without one: refresh, logout, passkey options", async () => {
    type Operation = { requestBody?: { required?: boolean; content: Record<string, unknown> } };
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, Operation>>;
    }>();
    const body = (path: string) => doc.paths[path]?.post?.requestBody;
    for (const path of ["/auth/refresh", "/auth/logout", "/auth/webauthn/options"]) {
      expect(body(path)?.required, path).toBe(false);
      const res = await app.http.inject({ method: "POST", url: path });
      expect(res.statusCode, path).not.toBe(400);
    }
    expect(body("/auth/login")?.required).toBe(true);
    // RFC 7662 §2.1: introspection takes a form body too, and the document says so.
    expect(Object.keys(body("/auth/introspect")?.content ?? {})).toEqual([
      "application/json",
      "application/x-www-form-urlencoded",
    ]);
  });

  it("documents the discovery metadata, saying its token endpoint is no RFC 6749 form exchange", async () => {
    type Schema = { properties?: Record<string, { description?: string }> };
    type Media = Record<string, { schema?: Schema }>;
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, { responses: Record<string, { content?: Media }> }>>;
    }>();
    const ok = doc.paths["/.well-known/openid-configuration"]?.get?.responses["200"];
    const fields = ok?.content?.["application/json"]?.schema?.properties ?? {};
    const served = (await app.http.inject({ url: "/.well-known/openid-configuration" })).json();
    expect(Object.keys(fields).sort()).toEqual(Object.keys(served).sort());
    expect(fields.token_endpoint?.description).toMatch(/not the RFC 6749/);
  });

  it("describes the routes as they behave (README.md): unlinking, the callback, unlock", async () => {
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, { summary?: string; description?: string }>>;
    }>();
    const text = (path: string, method: string) => {
      const op = doc.paths[path]?.[method];
      return `${op?.summary ?? ""} ${op?.description ?? ""}`;
    };
    // A passkey is another way to sign in, so the last identity of an account with one unlinks.
    expect(text("/users/me/identities/{provider}", "delete")).toMatch(/passkey/);
    // A verified provider email claims an account whose address was never verified.
    const callback = text("/auth/oauth/{provider}/callback", "get");
    expect(callback).not.toMatch(/both the provider and the account have it verified/);
    expect(callback).toMatch(/ever verified, the provider.s proof claims it/);
    // Unlock takes a backup code, as step-up does, and uses it up.
    expect(text("/auth/unlock", "post")).toMatch(/backup code/);
  });

  it("documents the 423 a locked session gets on every route that takes its access token but unlock", async () => {
    // Regression: only PATCH /users/me, POST /sessions/lock and two OAuth routes listed it.
    type Operation = { security?: unknown; responses: Record<string, unknown> };
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, Operation>>;
    }>();
    const { accessToken, refreshToken } = await registerUser(app);
    const lock = await app.http.inject({
      method: "POST",
      url: "/sessions/lock",
      headers: bearer(accessToken),
    });
    expect(lock.statusCode).toBe(204);
    const locked: string[] = [];
    const undocumented: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!JSON.stringify(operation.security ?? []).includes('"bearer"')) continue;
        const res = await app.http.inject({
          method: method.toUpperCase() as "GET",
          url: path.replace(/\{[^}]+\}/g, "x"),
          headers: bearer(accessToken),
        });
        const route = `${method.toUpperCase()} ${path}`;
        if (res.statusCode === 423) locked.push(route);
        if (!(String(res.statusCode) in operation.responses))
          undocumented.push(`${route} ${res.statusCode}`);
      }
    }
    const refresh = await postJson(app, "/auth/refresh", { refreshToken });
    expect(refresh.statusCode).toBe(423);
    if (!("423" in (doc.paths["/auth/refresh"]?.post?.responses ?? {})))
      undocumented.push("POST /auth/refresh 423");
    expect(undocumented).toEqual([]);
    expect(locked).toEqual(
      expect.arrayContaining([
        "GET /users/me",
        "POST /auth/logout/all",
        "POST /auth/password/change",
      ]),
    );
    expect(locked).not.toContain("POST /auth/unlock");
  });

  it("documents the other refusals README.md gives the token routes", async () => {
    type Operation = { responses: Record<string, unknown> };
    const doc = (await app.http.inject({ url: "/openapi.json" })).json<{
      paths: Record<string, Record<string, Operation>>;
    }>();
    const statuses = (path: string) => Object.keys(doc.paths[path]?.post?.responses ?? {});
    // A link mailed before the account was disabled (README.md, "Races").
    expect(statuses("/auth/password/reset")).toContain("403");
    // A refresh token of the wrong type in the body is validation_failed.
    expect((await postJson(app, "/auth/logout", { refreshToken: 5 })).statusCode).toBe(400);
    expect(statuses("/auth/logout")).toContain("400");
    // Routes that start a session answer 401 session_revoked when the account's sessions end
    // while they sign in (issue-tokens.ts, startSession), as POST /auth/login says.
    for (const path of ["/auth/magic-link/verify", "/auth/webauthn/verify", "/auth/guest"]) {
      expect(statuses(path), path).toContain("401");
    }
  });

  it("serves a browsable page at /docs, loaded by its first request", async () => {
    // Concurrent first requests share the one loading.
    const [page, again] = await Promise.all([
      app.http.inject({ url: "/docs/" }),
      app.http.inject({ url: "/docs/" }),
    ]);
    for (const res of [page, again]) {
      expect(res.statusCode).toBe(200);
      expect(res.headers["content-type"]).toMatch(/text\/html/);
      expect(res.body).toContain("swagger-ui");
    }
    const bare = await app.http.inject({ url: "/docs" });
    expect([200, 302]).toContain(bare.statusCode);
    const css = await app.http.inject({ url: "/docs/static/swagger-ui.css" });
    expect(css.statusCode).toBe(200);
    expect(css.headers["content-type"]).toMatch(/text\/css/);
    expect((await app.http.inject({ method: "HEAD", url: "/docs/" })).statusCode).toBe(200);
    const missing = await app.http.inject({ url: "/docs/static/no-such-file.js" });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ status: 404, code: "not_found" });
  });

  it("keeps /docs out of frames and to its own scripts: it can send cookie-authenticated writes", async () => {
    for (const url of ["/docs/", "/docs/static/swagger-initializer.js", "/docs/json"]) {
      const res = await app.http.inject({ url });
      expect(res.statusCode, url).toBe(200);
      const csp = String(res.headers["content-security-policy"]);
      expect(csp, url).toContain("frame-ancestors 'none'");
      expect(csp, url).toContain("script-src 'self';");
      expect(csp, url).not.toMatch(/script-src[^;]*unsafe/);
      expect(csp, url).toContain("connect-src 'self' http://latchkey.test;");
      expect(res.headers["x-frame-options"], url).toBe("DENY");
      expect(res.headers["x-content-type-options"], url).toBe("nosniff");
    }
  });

  it("shows the same document as /openapi.json", async () => {
    const [shown, served] = await Promise.all([
      app.http.inject({ url: "/docs/json" }),
      app.http.inject({ url: "/openapi.json" }),
    ]);
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toEqual(served.json());
  });
});
