import { afterEach, describe, expect, it } from "vitest";
import { bearer, json, rawRequest, registerUser, startTestApp, type TestApp } from "./helpers.js";
import { openSocket } from "./ws-client.js";

const PASSWORD = "correct horse battery";
const TOKEN = "m".repeat(40);

let app: TestApp;
afterEach(() => app?.close());

/** The value of one sample line, e.g. `latchkey_logins_total{outcome="success"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const scrape = async (headers: Record<string, string> = {}, remoteAddress = "127.0.0.1") =>
  app.http.inject({ url: "/metrics", headers, remoteAddress });

describe("GET /metrics", () => {
  it("counts requests by route pattern, logins by outcome, refreshes, reuse and limits", async () => {
    app = await startTestApp({ rateLimit: { loginFailuresPerIdentifier: 2 } });
    const user = await registerUser(app, { email: "m@example.com", password: PASSWORD });
    const login = (password: string) =>
      app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "m@example.com", password }),
      });
    expect((await login(PASSWORD)).statusCode).toBe(200);
    await login("wrong password");
    await login("wrong password");
    expect((await login(PASSWORD)).statusCode).toBe(429);
    for (const id of ["a", "b"]) {
      await app.http.inject({
        method: "DELETE",
        url: `/sessions/${id}`,
        headers: bearer(user.accessToken),
      });
    }
    const refresh = (token: string) =>
      app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken: token }) });
    expect((await refresh(user.refreshToken)).statusCode).toBe(200);
    expect((await refresh(user.refreshToken)).statusCode).toBe(200); // grace window
    app.clock.advance(60_000);
    expect((await refresh(user.refreshToken)).statusCode).toBe(401); // reuse

    for (const url of ["/nope", "/nope/again?x=1"]) await app.http.inject({ url });

    const res = await scrape();
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body;
    expect(sample(text, 'latchkey_logins_total{outcome="success"}')).toBe(1);
    expect(sample(text, 'latchkey_logins_total{outcome="failure"}')).toBe(2);
    expect(sample(text, 'latchkey_logins_total{outcome="rate_limited"}')).toBe(1);
    expect(sample(text, 'latchkey_rate_limited_total{limit="login"}')).toBe(1);
    expect(sample(text, 'latchkey_refreshes_total{result="rotated"}')).toBe(1);
    expect(sample(text, 'latchkey_refreshes_total{result="grace"}')).toBe(1);
    expect(sample(text, "latchkey_refresh_reuse_detected_total")).toBe(1);
    // The route pattern, not the raw URL: both ids land in one series.
    expect(
      sample(
        text,
        'latchkey_http_request_duration_seconds_count{method="DELETE",route="/sessions/:id",status="404"}',
      ),
    ).toBe(2);
    expect(text).not.toContain("/sessions/a");
    expect(
      sample(
        text,
        'latchkey_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}',
      ),
    ).toBe(2);
    // Buckets are cumulative and end at the count; every sample is one exposition-format line.
    const login200 = 'method="POST",route="/auth/login",status="200"';
    const buckets = text
      .split("\n")
      .filter(
        (l) =>
          l.startsWith(`latchkey_http_request_duration_seconds_bucket{`) && l.includes(login200),
      )
      .map((l) => Number(l.split(" ")[1]));
    expect(buckets).toHaveLength(12);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(buckets.at(-1)).toBe(1);
    expect(
      sample(text, `latchkey_http_request_duration_seconds_bucket{le="+Inf",${login200}}`),
    ).toBe(1);
    expect(sample(text, `latchkey_http_request_duration_seconds_sum{${login200}}`)).toBeGreaterThan(
      0,
    );
    for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
      expect(line).toMatch(
        /^[a-z_:][a-z0-9_:]*(\{[a-z_]\w*="[^"\n]*"(,[a-z_]\w*="[^"\n]*")*\})? \S+$/,
      );
    }
    expect(sample(text, 'latchkey_password_hash_duration_seconds_count{operation="hash"}')).toBe(1);
    expect(sample(text, 'latchkey_password_hash_duration_seconds_count{operation="verify"}')).toBe(
      3,
    );
    // register + the first login; the reused one was revoked.
    expect(sample(text, "latchkey_active_sessions")).toBe(1);
    expect(text).toContain("latchkey_process_resident_memory_bytes");
  });

  it("counts WebSocket handshakes as it logs them: upgraded (101) and refused, one series each", async () => {
    // An upgraded handshake's reply is hijacked, so the route's onResponse never timed it.
    app = await startTestApp();
    await app.listen();
    const { accessToken } = await registerUser(app);
    const client = await openSocket(app.url, {
      protocols: ["latchkey.v1", `bearer.${accessToken}`],
    });
    expect(await client.next()).toMatchObject({ type: "authenticated" });
    client.ws.close();
    const refused = await rawRequest(
      app,
      "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    expect(refused).toMatch(/^HTTP\/1\.1 400 /);
    const text = (await scrape()).body;
    const ws = (status: number) =>
      sample(
        text,
        `latchkey_http_request_duration_seconds_count{method="GET",route="/ws",status="${status}"}`,
      );
    expect([ws(101), ws(400)]).toEqual([1, 1]);
    // Each label set once: the exposition format allows no duplicate series.
    const series = text
      .split("\n")
      .filter((l) => l.startsWith("latchkey_http_request_duration_seconds_count{"))
      .map((l) => l.split(" ")[0]);
    expect(new Set(series).size).toBe(series.length);
  });

  it("answers loopback callers only by default, never through a proxy", async () => {
    app = await startTestApp();
    expect((await scrape({}, "10.0.0.7")).statusCode).toBe(403);
    expect((await scrape({ "x-forwarded-for": "203.0.113.9" })).statusCode).toBe(403);
    expect((await scrape({}, "::1")).statusCode).toBe(200);
  });

  it("with a metrics token, wants exactly that token from anywhere", async () => {
    app = await startTestApp({ operations: { metricsToken: TOKEN } });
    expect((await scrape()).statusCode).toBe(401);
    expect((await scrape(bearer(`${TOKEN}x`))).statusCode).toBe(401);
    expect((await scrape(bearer(TOKEN), "10.0.0.7")).statusCode).toBe(200);
  });
});
