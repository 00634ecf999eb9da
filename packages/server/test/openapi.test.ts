import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./helpers.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("OpenAPI document", () => {
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

  it("serves a browsable page at /docs", async () => {
    const res = await app.http.inject({ url: "/docs/" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/html/);
  });
});
