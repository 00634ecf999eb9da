import { afterEach, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./helpers.js";

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

describe("security headers on API answers", () => {
  it("nosniff on every answer: JSON, problem+json, preflights", async () => {
    app = await startTestApp();
    const answers = [
      await app.http.inject({ url: "/healthz" }),
      await app.http.inject({ url: "/users/me" }),
      await app.http.inject({ url: "/no-such-route" }),
      await app.http.inject({
        method: "POST",
        url: "/auth/login",
        headers: { "content-type": "application/json" },
        payload: "{",
      }),
      await app.http.inject({ url: "/.well-known/jwks.json" }),
      await app.http.inject({
        method: "OPTIONS",
        url: "/users/me",
        headers: { origin: "http://latchkey.test", "access-control-request-method": "PATCH" },
      }),
    ];
    expect(answers.map((r) => r.statusCode)).toEqual([200, 401, 404, 400, 200, 204]);
    for (const res of answers) {
      expect(res.headers["x-content-type-options"], res.raw.req.url).toBe("nosniff");
      // Plain-HTTP deployments send no HSTS: browsers ignore it there (RFC 6797 §8.1).
      expect(res.headers["strict-transport-security"]).toBeUndefined();
    }
  });

  it("HSTS (one year, this host only) when the public URL is https", async () => {
    app = await startTestApp({ publicUrl: "https://auth.example.com" });
    for (const url of ["/healthz", "/users/me", "/ui/login", "/docs/"]) {
      const res = await app.http.inject({ url });
      expect(res.headers["strict-transport-security"], url).toBe("max-age=31536000");
      expect(res.headers["x-content-type-options"], url).toBe("nosniff");
    }
  });
});
