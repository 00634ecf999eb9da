import type { LightMyRequestResponse } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { bearer, json, startTestApp, type TestApp } from "./helpers.js";

const PASSWORD = "correct horse battery";
const ORIGIN = "http://latchkey.test"; // the default allowed origin for publicUrl http://latchkey.test

type Overrides = Parameters<typeof startTestApp>[0];
let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(overrides: Overrides = {}): Promise<TestApp> {
  app = await startTestApp(overrides);
  return app;
}

const register = (a: TestApp, email = "d@example.com") =>
  a.http.inject({
    method: "POST",
    url: "/auth/register",
    ...json({ email, password: PASSWORD }),
  });

const cookieOf = (res: LightMyRequestResponse, name: string) =>
  res.cookies.find((c) => c.name === name);

/** Registers and returns the cookies a browser would now hold. */
async function browserSession(a: TestApp): Promise<{ access: string; refresh: string }> {
  const res = await register(a);
  expect(res.statusCode).toBe(201);
  const access = cookieOf(res, "lk_access")?.value;
  const refresh = cookieOf(res, "lk_refresh")?.value;
  if (!access || !refresh) throw new Error("expected both token cookies");
  return { access, refresh };
}

function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status, code });
}

describe("token delivery", () => {
  it("defaults to both: tokens in the body and in cookies", async () => {
    const a = await start();
    const res = await register(a);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(typeof body.accessToken).toBe("string");
    expect(typeof body.refreshToken).toBe("string");
    expect(cookieOf(res, "lk_access")?.value).toBe(body.accessToken);
    expect(cookieOf(res, "lk_refresh")?.value).toBe(body.refreshToken);
    expect(res.headers["cache-control"]).toBe("no-store");
  });

  it("cookie mode keeps the tokens out of the body", async () => {
    const a = await start({ tokens: { delivery: "cookie" } });
    const res = await register(a);
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).not.toHaveProperty("accessToken");
    expect(body).not.toHaveProperty("refreshToken");
    expect(body).toMatchObject({ expiresIn: 900, sessionExpiresIn: 604_800, tokenType: "Bearer" });
    expect(body.user.email).toBe("d@example.com");
    expect(cookieOf(res, "lk_access")?.value).toBeTruthy();
    expect(cookieOf(res, "lk_refresh")?.value).toBeTruthy();
  });

  it("cookie mode: the cookies alone carry on the session (refresh, then profile)", async () => {
    const a = await start({ tokens: { delivery: "cookie" } });
    const { refresh } = await browserSession(a);
    const refreshed = await a.http.inject({
      method: "POST",
      url: "/auth/refresh",
      headers: { cookie: `lk_refresh=${refresh}`, origin: ORIGIN },
    });
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.json()).not.toHaveProperty("refreshToken");
    const access = cookieOf(refreshed, "lk_access")?.value;
    const me = await a.http.inject({
      url: "/users/me",
      headers: { cookie: `lk_access=${access}` },
    });
    expect(me.statusCode).toBe(200);
  });

  it("body mode sets no cookies", async () => {
    const a = await start({ tokens: { delivery: "body" } });
    const res = await register(a);
    expect(res.statusCode).toBe(201);
    expect(res.headers["set-cookie"]).toBeUndefined();
    const { accessToken, refreshToken } = res.json();
    expect(accessToken).toBeTruthy();

    const login = await a.http.inject({
      method: "POST",
      url: "/auth/login",
      ...json({ identifier: "d@example.com", password: PASSWORD }),
    });
    expect(login.statusCode).toBe(200);
    expect(login.headers["set-cookie"]).toBeUndefined();

    const refreshed = await a.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken }),
    });
    expect(refreshed.statusCode).toBe(200);
    expect(refreshed.headers["set-cookie"]).toBeUndefined();
  });
});

describe("cookie attributes", () => {
  it("lk_access: HttpOnly; Secure; SameSite=Lax; Path=/; lives as long as the token", async () => {
    const a = await start();
    const cookie = cookieOf(await register(a), "lk_access");
    expect(cookie).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: "Lax",
      path: "/",
      maxAge: 900,
    });
  });

  it("lk_refresh: HttpOnly; Secure; SameSite=Strict; Path=/auth; lives as long as the session", async () => {
    const a = await start();
    const cookie = cookieOf(await register(a), "lk_refresh");
    expect(cookie).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: "Strict",
      path: "/auth",
      maxAge: 604_800,
    });
  });

  it("drops Secure (only) when cookies.secure is false", async () => {
    const a = await start({ cookies: { secure: false } });
    const res = await register(a);
    for (const name of ["lk_access", "lk_refresh"]) {
      const cookie = cookieOf(res, name);
      expect(cookie?.httpOnly).toBe(true);
      expect(cookie?.secure).toBeFalsy();
    }
    for (const header of [res.headers["set-cookie"]].flat()) {
      expect(header).not.toMatch(/;\s*Secure/i);
    }
  });
});

describe("CSRF defence for cookie-authenticated requests", () => {
  const logoutAll = (a: TestApp, headers: Record<string, string>) =>
    a.http.inject({ method: "POST", url: "/auth/logout/all", headers });

  it("rejects a cookie-authenticated POST with neither Origin nor Referer", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    expectProblem(await logoutAll(a, { cookie: `lk_access=${access}` }), 403, "csrf_rejected");
    // Nothing happened: the session still works.
    const me = await a.http.inject({
      url: "/users/me",
      headers: { cookie: `lk_access=${access}` },
    });
    expect(me.statusCode).toBe(200);
  });

  it.each([
    ["another site", "http://evil.test"],
    ["another port of our host", "http://latchkey.test:8080"],
    ["another scheme", "https://latchkey.test"],
    ["an opaque origin", "null"],
  ])("rejects an Origin from %s", async (_why, origin) => {
    const a = await start();
    const { access } = await browserSession(a);
    const res = await logoutAll(a, { cookie: `lk_access=${access}`, origin });
    expectProblem(res, 403, "csrf_rejected");
  });

  it("rejects a disallowed Referer", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    const res = await logoutAll(a, {
      cookie: `lk_access=${access}`,
      referer: "http://evil.test/latchkey.test/page",
    });
    expectProblem(res, 403, "csrf_rejected");
  });

  it("accepts an allowed Origin", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    const res = await logoutAll(a, { cookie: `lk_access=${access}`, origin: ORIGIN });
    expect(res.statusCode).toBe(204);
  });

  it("accepts an allowed Referer when there is no Origin", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    const res = await logoutAll(a, {
      cookie: `lk_access=${access}`,
      referer: `${ORIGIN}/ui/settings?tab=sessions`,
    });
    expect(res.statusCode).toBe(204);
  });

  it("honours configured allowedOrigins", async () => {
    const a = await start({ allowedOrigins: ["https://app.example.com"] });
    const { access } = await browserSession(a);
    const cookie = `lk_access=${access}`;
    expectProblem(await logoutAll(a, { cookie, origin: ORIGIN }), 403, "csrf_rejected");
    expect((await logoutAll(a, { cookie, origin: "https://app.example.com" })).statusCode).toBe(
      204,
    );
  });

  it("exempts Bearer-authenticated requests", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    const res = await logoutAll(a, bearer(access));
    expect(res.statusCode).toBe(204);
  });

  it("does not ask for an Origin on GET", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    const me = await a.http.inject({
      url: "/users/me",
      headers: { cookie: `lk_access=${access}` },
    });
    expect(me.statusCode).toBe(200);
    const sessions = await a.http.inject({
      url: "/sessions",
      headers: { cookie: `lk_access=${access}`, origin: "http://evil.test" },
    });
    expect(sessions.statusCode).toBe(200);
  });

  it("guards DELETE /sessions/:id with the cookie too", async () => {
    const a = await start();
    const { access } = await browserSession(a);
    const list = await a.http.inject({ url: "/sessions", headers: bearer(access) });
    const id = list.json().sessions[0].id as string;
    const res = await a.http.inject({
      method: "DELETE",
      url: `/sessions/${id}`,
      headers: { cookie: `lk_access=${access}` },
    });
    expectProblem(res, 403, "csrf_rejected");
  });

  describe("POST /auth/refresh with the lk_refresh cookie", () => {
    const refreshWith = (a: TestApp, headers: Record<string, string>) =>
      a.http.inject({ method: "POST", url: "/auth/refresh", headers });

    it("is rejected without an Origin and does not rotate", async () => {
      const a = await start();
      const { refresh } = await browserSession(a);
      const res = await refreshWith(a, { cookie: `lk_refresh=${refresh}` });
      expectProblem(res, 403, "csrf_rejected");
      const retry = await refreshWith(a, { cookie: `lk_refresh=${refresh}`, origin: ORIGIN });
      expect(retry.statusCode).toBe(200);
    });

    it("is rejected from a disallowed Origin", async () => {
      const a = await start();
      const { refresh } = await browserSession(a);
      const res = await refreshWith(a, {
        cookie: `lk_refresh=${refresh}`,
        origin: "http://evil.test",
      });
      expectProblem(res, 403, "csrf_rejected");
    });

    it("rotates from an allowed Origin and sets new cookies", async () => {
      const a = await start();
      const { refresh } = await browserSession(a);
      const res = await refreshWith(a, { cookie: `lk_refresh=${refresh}`, origin: ORIGIN });
      expect(res.statusCode).toBe(200);
      const next = cookieOf(res, "lk_refresh")?.value;
      expect(next).toBeTruthy();
      expect(next).not.toBe(refresh);
    });

    it("needs no Origin when the token comes in the body", async () => {
      const a = await start();
      const { refresh } = await browserSession(a);
      const res = await a.http.inject({
        method: "POST",
        url: "/auth/refresh",
        ...json({ refreshToken: refresh }),
      });
      expect(res.statusCode).toBe(200);
    });
  });

  describe("POST /auth/logout with cookies", () => {
    const logout = (a: TestApp, headers: Record<string, string>) =>
      a.http.inject({ method: "POST", url: "/auth/logout", headers });

    it("is rejected without an Origin and the session lives on", async () => {
      const a = await start();
      const { access, refresh } = await browserSession(a);
      const cookie = `lk_access=${access}; lk_refresh=${refresh}`;
      expectProblem(await logout(a, { cookie }), 403, "csrf_rejected");
      expectProblem(await logout(a, { cookie: `lk_refresh=${refresh}` }), 403, "csrf_rejected");
      expect((await a.http.inject({ url: "/users/me", headers: bearer(access) })).statusCode).toBe(
        200,
      );
    });

    it("ends the session from an allowed Origin", async () => {
      const a = await start();
      const { access, refresh } = await browserSession(a);
      const res = await logout(a, {
        cookie: `lk_access=${access}; lk_refresh=${refresh}`,
        origin: ORIGIN,
      });
      expect(res.statusCode).toBe(204);
      const me = await a.http.inject({ url: "/users/me", headers: bearer(access) });
      expectProblem(me, 401, "session_revoked");
    });

    it("ends the session with only the refresh cookie from an allowed Origin", async () => {
      const a = await start();
      const { access, refresh } = await browserSession(a);
      const res = await logout(a, { cookie: `lk_refresh=${refresh}`, origin: ORIGIN });
      expect(res.statusCode).toBe(204);
      const me = await a.http.inject({ url: "/users/me", headers: bearer(access) });
      expectProblem(me, 401, "session_revoked");
    });
  });
});

describe("CORS", () => {
  const preflight = (a: TestApp, origin: string) =>
    a.http.inject({
      method: "OPTIONS",
      url: "/auth/login",
      headers: {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });

  it("answers a preflight from an allowed origin, with credentials", async () => {
    const a = await start();
    const res = await preflight(a, ORIGIN);
    expect(res.statusCode).toBeLessThan(300);
    expect(res.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(res.headers["access-control-allow-credentials"]).toBe("true");
    expect(String(res.headers["access-control-allow-methods"])).toContain("POST");
    expect(res.headers["access-control-expose-headers"]).toBe("Retry-After, WWW-Authenticate");
  });

  it("gives a disallowed origin no Access-Control-Allow-Origin", async () => {
    const a = await start();
    const res = await preflight(a, "http://evil.test");
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("keys every response on Origin for caches and caps the preflight cache", async () => {
    const a = await start();
    expect((await a.http.inject({ url: "/healthz" })).headers.vary).toBe("Origin");
    const res = await preflight(a, ORIGIN);
    expect(res.statusCode).toBe(204);
    expect(String(res.headers["access-control-allow-headers"])).toContain("Authorization");
    expect(res.headers["access-control-max-age"]).toBe("600");
  });

  it("labels actual responses for an allowed origin only", async () => {
    const a = await start();
    const allowed = await a.http.inject({ url: "/healthz", headers: { origin: ORIGIN } });
    expect(allowed.headers["access-control-allow-origin"]).toBe(ORIGIN);
    expect(allowed.headers["access-control-allow-credentials"]).toBe("true");
    const denied = await a.http.inject({
      url: "/healthz",
      headers: { origin: "http://evil.test" },
    });
    expect(denied.headers["access-control-allow-origin"]).toBeUndefined();
  });
});
