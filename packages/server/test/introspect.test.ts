import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, json, registerUser, startTestApp, type TestApp } from "./helpers.js";

let app: TestApp;
let service: string; // an API token with the `introspect` scope
beforeEach(async () => {
  app = await startTestApp();
  const owner = await registerUser(app);
  service = await createApiToken(owner.accessToken, ["introspect"]);
});
afterEach(() => app.close());

async function createApiToken(accessToken: string, scopes: string[]): Promise<string> {
  const res = await app.http.inject({
    method: "POST",
    url: "/tokens",
    ...json({ name: "service", scopes }),
    headers: { "content-type": "application/json", ...bearer(accessToken) },
  });
  expect(res.statusCode).toBe(201);
  return res.json().token;
}

const introspect = (token: string, caller = service) =>
  app.http.inject({
    method: "POST",
    url: "/auth/introspect",
    ...json({ token }),
    headers: { "content-type": "application/json", ...bearer(caller) },
  });

describe("POST /auth/introspect", () => {
  it("describes an active access token with its own claims, never cached", async () => {
    const { accessToken, user } = await registerUser(app, { username: "ada" });
    const res = await introspect(accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    const body = res.json();
    expect(body).toMatchObject({
      active: true,
      token_type: "access_token",
      sub: user.id,
      username: "ada",
      role: "user",
      tier: "free",
      iss: "http://latchkey.test",
      aud: "latchkey",
      guest: false,
      amr: ["pwd"],
    });
    expect(body.exp - body.iat).toBe(15 * 60);
    expect(typeof body.sid).toBe("string");
    expect(body.typ).toBeUndefined();
  });

  it("answers only { active: false } for revoked, expired, locked, forged and foreign tokens", async () => {
    const a = await registerUser(app);
    await app.http.inject({ method: "POST", url: "/auth/logout", headers: bearer(a.accessToken) });
    const b = await registerUser(app);
    await app.http.inject({
      method: "POST",
      url: "/sessions/lock",
      headers: bearer(b.accessToken),
    });
    const c = await registerUser(app);
    const [header, payload] = c.accessToken.split(".");
    const forged = `${header}.${payload}.${"A".repeat(86)}`;
    for (const token of [a.accessToken, b.accessToken, forged, "nonsense", c.refreshToken]) {
      const res = await introspect(token);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ active: false });
    }
    expect((await introspect(service)).json()).toEqual({ active: false });
    expect((await introspect(c.accessToken)).json().active).toBe(true);
    app.clock.advance(16 * 60_000);
    expect((await introspect(c.accessToken)).json()).toEqual({ active: false });
  });

  it("sees a session revoked from elsewhere at once", async () => {
    const a = await registerUser(app, { email: "two@example.com" });
    expect((await introspect(a.accessToken)).json().active).toBe(true); // now cached
    const other = await app.http.inject({
      method: "POST",
      url: "/auth/login",
      ...json({ identifier: "two@example.com", password: "correct horse battery" }),
    });
    const all = await app.http.inject({
      method: "POST",
      url: "/auth/logout/all",
      headers: bearer(other.json().accessToken),
    });
    expect(all.statusCode).toBe(204);
    expect((await introspect(a.accessToken)).json()).toEqual({ active: false });
  });

  it("takes an RFC 7662 form body", async () => {
    const { accessToken } = await registerUser(app);
    const res = await app.http.inject({
      method: "POST",
      url: "/auth/introspect",
      payload: new URLSearchParams({
        token: accessToken,
        token_type_hint: "access_token",
      }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", ...bearer(service) },
    });
    expect(res.json().active).toBe(true);
  });

  it("refuses callers without an API token that has the introspect scope", async () => {
    const { accessToken } = await registerUser(app);
    const unscoped = await createApiToken(accessToken, ["profile:read"]);
    expect((await introspect(accessToken, unscoped)).json()).toMatchObject({ code: "forbidden" });
    expect((await introspect(accessToken, accessToken)).json()).toMatchObject({
      code: "forbidden",
    });
    const anonymous = await app.http.inject({
      method: "POST",
      url: "/auth/introspect",
      ...json({ token: accessToken }),
    });
    expect(anonymous.json()).toMatchObject({ code: "unauthenticated", status: 401 });
    const empty = await introspect("");
    expect(empty.json()).toMatchObject({ code: "validation_failed" });
  });
});
