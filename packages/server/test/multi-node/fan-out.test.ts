import { describe, expect, it } from "vitest";
import { bearer, json, registerUser, type TestApp } from "../helpers.js";
import { useTwoNodes } from "./two-nodes.js";

/** Two nodes of one deployment: the same PostgreSQL schema and Redis namespace. */
describe("two nodes on PostgreSQL + Redis", () => {
  const nodes = useTwoNodes();

  const me = (app: TestApp, token: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(token) });

  it("a logout on node A is refused on node B within a second", async () => {
    const { accessToken } = await registerUser(nodes.a);
    expect((await me(nodes.b, accessToken)).statusCode).toBe(200); // B now caches the session
    const logout = await nodes.a.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(accessToken),
    });
    expect(logout.statusCode).toBe(204);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 1000) {
      status = (await me(nodes.b, accessToken)).statusCode;
      if (status === 200) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("the per-identifier login limit holds across both nodes", async () => {
    const { user } = await registerUser(nodes.a, { username: "shared-limit" });
    expect(user.id).toBeTruthy();
    const attempt = (app: TestApp) =>
      app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "shared-limit", password: "wrong password!" }),
      });
    for (let i = 0; i < 5; i++)
      expect((await attempt(i % 2 ? nodes.a : nodes.b)).statusCode).toBe(401);
    const blocked = await attempt(nodes.a);
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("a key rotated through node A verifies on node B", async () => {
    await nodes.a.svc.keys.rotate();
    nodes.a.svc.bus.publish({ type: "keys" });
    const { accessToken } = await registerUser(nodes.a);
    expect((await me(nodes.b, accessToken)).statusCode).toBe(200);
  });
});
