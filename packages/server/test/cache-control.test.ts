import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, json, registerUser, startTestApp, type TestApp } from "./helpers.js";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("Cache-Control on authenticated answers", () => {
  it("is no-store on every route that reads the caller's own data, its errors too", async () => {
    const { accessToken } = await registerUser(app);
    for (const url of ["/users/me", "/sessions", "/tokens", "/webauthn/credentials"]) {
      const res = await app.http.inject({ url, headers: bearer(accessToken) });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers["cache-control"], url).toBe("no-store");
    }
    const patched = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      headers: { ...bearer(accessToken), ...json({}).headers },
      payload: JSON.stringify({ singleSession: false }),
    });
    expect(patched.headers["cache-control"]).toBe("no-store");
    const admin = await app.http.inject({ url: "/admin/users", headers: bearer(accessToken) });
    expect(admin.statusCode).toBe(403);
    expect(admin.headers["cache-control"]).toBe("no-store");
    const refused = await app.http.inject({ url: "/users/me" });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers["cache-control"]).toBe("no-store");
    // Secrets shown once, and logout (which takes a refresh token too) alike.
    const post = (url: string, body?: unknown) =>
      app.http.inject({
        method: "POST",
        url,
        headers: { ...bearer(accessToken), ...(body ? json(body).headers : {}) },
        ...(body ? { payload: JSON.stringify(body) } : {}),
      });
    const created = await post("/tokens", { name: "ci", scopes: ["profile:read"] });
    const setup = await post("/mfa/totp/setup");
    const logout = await post("/auth/logout");
    expect([created.statusCode, setup.statusCode, logout.statusCode]).toEqual([201, 200, 204]);
    for (const res of [created, setup, logout]) {
      expect(res.headers["cache-control"]).toBe("no-store");
    }
  });

  it("is no-store on the refused answers of the routes that take a refresh, MFA or exchange credential", async () => {
    const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      app.http.inject({
        method: "POST",
        url,
        headers: { ...json(body).headers, ...headers },
        payload: JSON.stringify(body),
      });
    const refused = [
      await post("/auth/refresh", {}),
      await post("/auth/refresh", { refreshToken: "not-a-refresh-token" }),
      await post("/auth/login/mfa", { code: "123456" }),
      await post("/auth/login/mfa", { code: "123456" }, { "x-mfa-token": "forged" }),
      await post("/auth/oauth/exchange", { code: "unknown" }),
      await post("/auth/logout", { refreshToken: 42 }),
    ];
    expect(refused.map((res) => res.statusCode)).toEqual([401, 401, 401, 401, 400, 400]);
    for (const res of refused) expect(res.headers["cache-control"], res.body).toBe("no-store");
  });

  it("leaves public documents cacheable", async () => {
    const jwks = await app.http.inject({ url: "/.well-known/jwks.json" });
    expect(jwks.headers["cache-control"]).toBe("public, max-age=300");
  });
});
