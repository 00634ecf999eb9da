import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bearer, json, registerUser, startTestApp, type TestApp } from "../helpers.js";

/** Two nodes of one deployment: the same PostgreSQL schema and Redis namespace. */
describe("two nodes on PostgreSQL + Redis", () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp({ sessionCacheMs: 1000 });
    b = await startTestApp({ sessionCacheMs: 1000 }, { shareWith: a });
  });
  afterAll(async () => {
    await b.close();
    await a.close();
  });

  const me = (app: TestApp, token: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(token) });

  it("a logout on node A is refused on node B within a second", async () => {
    const { accessToken } = await registerUser(a);
    expect((await me(b, accessToken)).statusCode).toBe(200); // B now caches the session
    const logout = await a.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(accessToken),
    });
    expect(logout.statusCode).toBe(204);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 1000) {
      status = (await me(b, accessToken)).statusCode;
      if (status === 200) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("the per-identifier login limit holds across both nodes", async () => {
    const { user } = await registerUser(a, { username: "shared-limit" });
    expect(user.id).toBeTruthy();
    const attempt = (app: TestApp) =>
      app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "shared-limit", password: "wrong password!" }),
      });
    for (let i = 0; i < 5; i++) expect((await attempt(i % 2 ? a : b)).statusCode).toBe(401);
    const blocked = await attempt(a);
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("a key rotated through node A verifies on node B", async () => {
    await a.svc.keys.rotate();
    a.svc.bus.publish({ type: "keys" });
    const { accessToken } = await registerUser(a);
    expect((await me(b, accessToken)).statusCode).toBe(200);
  });
});
