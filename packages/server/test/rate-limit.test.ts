import type { LightMyRequestResponse } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { createLink } from "../src/flows/mail-links.js";
import { json, registerUser, startTestApp, type TestApp } from "./helpers.js";

// Limiter windows run on real time; each test gets a fresh server, so counts start at zero.
const PASSWORD = "correct horse battery";
const LOGIN_WINDOW_S = 15 * 60;

let app: TestApp;
afterEach(() => app.close());

const login = (identifier: string, password: string, ip = "192.0.2.1") =>
  app.http.inject({
    method: "POST",
    url: "/auth/login",
    remoteAddress: ip,
    ...json({ identifier, password }),
  });

const register = (email: string, ip: string) =>
  app.http.inject({
    method: "POST",
    url: "/auth/register",
    remoteAddress: ip,
    ...json({ email, password: PASSWORD }),
  });

async function failLogins(identifier: string, times: number, ip?: string) {
  for (let i = 0; i < times; i++) {
    const res = await login(identifier, "wrong password!", ip);
    expect(res.statusCode, `failure ${i + 1}`).toBe(401);
    expect(res.json().code).toBe("invalid_credentials");
  }
}

/** 429 rate_limited with Retry-After in whole seconds, no longer than `windowS`. */
function expectRateLimited(res: LightMyRequestResponse, windowS: number) {
  expect(res.statusCode).toBe(429);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status: 429, code: "rate_limited" });
  const retryAfter = String(res.headers["retry-after"]);
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThan(0);
  expect(Number(retryAfter)).toBeLessThanOrEqual(windowS);
}

describe("failed logins per identifier", () => {
  it("refuses the 6th attempt after 5 failures, even with the right password", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "victim@example.com" });
    await failLogins("victim@example.com", 5);
    expectRateLimited(await login("victim@example.com", PASSWORD), LOGIN_WINDOW_S);
  });

  it("counts the identifier case-insensitively and from any IP", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "victim@example.com" });
    await failLogins("Victim@Example.com", 2, "192.0.2.1");
    await failLogins("VICTIM@example.com", 2, "192.0.2.2");
    await failLogins("victim@example.com", 1, "192.0.2.3");
    expectRateLimited(await login("victim@example.com", PASSWORD, "192.0.2.4"), LOGIN_WINDOW_S);
  });

  it("counts one account once, whether named by email or by username", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "both@example.com", username: "both_names" });
    await failLogins("both@example.com", 3, "192.0.2.1");
    await failLogins("BOTH_NAMES", 2, "192.0.2.2");
    expectRateLimited(await login("both_names", PASSWORD, "192.0.2.3"), LOGIN_WINDOW_S);
  });

  it("leaves other identifiers alone", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "victim@example.com" });
    await registerUser(app, { email: "bystander@example.com" });
    await failLogins("victim@example.com", 5);
    expect((await login("bystander@example.com", PASSWORD, "192.0.2.9")).statusCode).toBe(200);
  });

  it("starts counting afresh after a successful login", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "typo@example.com" });
    await failLogins("typo@example.com", 4);
    expect((await login("typo@example.com", PASSWORD)).statusCode).toBe(200);
    await failLogins("typo@example.com", 4);
    expect((await login("typo@example.com", PASSWORD)).statusCode).toBe(200);
  });

  it("cannot be outrun by concurrent guesses", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "victim@example.com" });
    const attempts = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login("victim@example.com", `guess number ${i}`)),
    );
    const statuses = attempts.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
  });

  // Regression: 5 wrong passwords from anywhere, repeated each window, kept the owner out
  // for good, right password or not. Where the account signed in before, failures count apart.
  it("strangers' failures do not lock the owner out where the account signed in before", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "owner@example.com" });
    const home = "198.51.100.7";
    expect((await login("owner@example.com", PASSWORD, home)).statusCode).toBe(200);
    await failLogins("owner@example.com", 5, "192.0.2.66");
    expectRateLimited(await login("owner@example.com", PASSWORD, "192.0.2.67"), LOGIN_WINDOW_S);
    expect((await login("owner@example.com", PASSWORD, home)).statusCode).toBe(200);
    // Guesses from a known address are bounded all the same, and fill only its own count.
    await failLogins("owner@example.com", 5, home);
    expectRateLimited(await login("owner@example.com", PASSWORD, home), LOGIN_WINDOW_S);
    expect((await login("owner@example.com", PASSWORD, "127.0.0.1")).statusCode).toBe(200);
  });

  it("an address whose sessions a claim of the email ended is not the owner's", async () => {
    app = await startTestApp();
    // Someone registers the owner's address from their own IP; the owner claims it by mail.
    const squatter = await app.http.inject({
      method: "POST",
      url: "/auth/register",
      remoteAddress: "203.0.113.9",
      ...json({ email: "claimed@example.com", password: "the squatter's password" }),
    });
    expect(squatter.statusCode).toBe(201);
    const { link } = await createLink(app.svc, squatter.json().user, "magic_link");
    const claim = await app.http.inject({
      method: "POST",
      url: "/auth/magic-link/verify",
      remoteAddress: "198.51.100.7",
      ...json({ token: new URL(link).searchParams.get("token") }),
    });
    expect(claim.statusCode).toBe(200);
    // The squatter's failures count in the account's bucket, as any stranger's.
    await failLogins("claimed@example.com", 5, "192.0.2.66");
    expectRateLimited(await login("claimed@example.com", PASSWORD, "203.0.113.9"), LOGIN_WINDOW_S);
  });

  it("follows the configured limit", async () => {
    app = await startTestApp({ rateLimit: { loginFailuresPerIdentifier: 2 } });
    await registerUser(app, { email: "strict@example.com" });
    await failLogins("strict@example.com", 2);
    expectRateLimited(await login("strict@example.com", PASSWORD), LOGIN_WINDOW_S);
  });
});

describe("failed logins per IP", () => {
  it("refuses any identifier from an IP after 10 failures across identifiers", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "real@example.com" });
    for (let i = 0; i < 10; i++) await failLogins(`nobody-${i}@example.com`, 1, "198.51.100.7");

    expectRateLimited(await login("real@example.com", PASSWORD, "198.51.100.7"), LOGIN_WINDOW_S);
    expectRateLimited(await login("someone-new", "whatever!", "198.51.100.7"), LOGIN_WINDOW_S);
    // The limit is the IP's: the same account still signs in from elsewhere.
    expect((await login("real@example.com", PASSWORD, "198.51.100.8")).statusCode).toBe(200);
  });

  it("does not count successful logins", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "office@example.com" });
    const ip = "198.51.100.20"; // one NAT, many sign-ins
    for (let i = 0; i < 9; i++) await failLogins(`nobody-${i}@example.com`, 1, ip);
    for (let i = 0; i < 5; i++) {
      expect((await login("office@example.com", PASSWORD, ip)).statusCode).toBe(200);
    }
    await failLogins("nobody-9@example.com", 1, ip); // the 10th failure
    expectRateLimited(await login("office@example.com", PASSWORD, ip), LOGIN_WINDOW_S);
  });

  it("does not count attempts refused by the identifier limit", async () => {
    app = await startTestApp();
    await registerUser(app, { email: "other@example.com" });
    const ip = "198.51.100.30";
    await failLogins("locked@example.com", 5, ip);
    for (let i = 0; i < 10; i++) {
      expectRateLimited(await login("locked@example.com", "wrong again", ip), LOGIN_WINDOW_S);
    }
    expect((await login("other@example.com", PASSWORD, ip)).statusCode).toBe(200);
  });
});

describe("public endpoints per IP", () => {
  it("answers the 4th register or login from one IP with 429 when the limit is 3", async () => {
    app = await startTestApp({ rateLimit: { publicPerIp: 3, publicWindowSeconds: 60 } });
    const ip = "203.0.113.50";
    expect((await register("one@example.com", ip)).statusCode).toBe(201);
    expect((await register("two@example.com", ip)).statusCode).toBe(201);
    expect((await login("one@example.com", PASSWORD, ip)).statusCode).toBe(200);

    expectRateLimited(await login("one@example.com", PASSWORD, ip), 60);
    expectRateLimited(await register("three@example.com", ip), 60);
    expectRateLimited(
      await app.http.inject({
        method: "POST",
        url: "/auth/setup",
        remoteAddress: ip,
        ...json({ username: "root", password: PASSWORD }),
      }),
      60,
    );

    expect((await register("three@example.com", "203.0.113.51")).statusCode).toBe(201);
  });

  it("counts requests, not only failures", async () => {
    app = await startTestApp({ rateLimit: { publicPerIp: 3 } });
    const ip = "203.0.113.60";
    await register("u@example.com", ip);
    expect((await login("u@example.com", PASSWORD, ip)).statusCode).toBe(200);
    expect((await login("u@example.com", PASSWORD, ip)).statusCode).toBe(200);
    expectRateLimited(await login("u@example.com", PASSWORD, ip), 60);
  });
});
