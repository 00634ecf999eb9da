import type { LightMyRequestResponse } from "fastify";
import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bearer, json, openAppDb, registerUser, startTestApp, type TestApp } from "./helpers.js";

const PASSWORD = "correct horse battery";
const HOUR_MS = 3_600_000;

interface GuestResponse {
  user: { id: string; guest: boolean; tier: string; email: string | null; username: string };
  accessToken: string;
  refreshToken: string;
  sessionExpiresIn: number;
  returningGuest: boolean;
}

let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

const guestRequest = (body: { username: string; email?: string }) =>
  app.http.inject({ method: "POST", url: "/auth/guest", ...json(body) });

async function startGuest(body: { username: string; email?: string }): Promise<GuestResponse> {
  const res = await guestRequest(body);
  expect(res.statusCode).toBe(201);
  return res.json();
}

const upgrade = (accessToken: string, body: Record<string, string>) =>
  app.http.inject({
    method: "POST",
    url: "/auth/guest/upgrade",
    ...json(body),
    headers: { "content-type": "application/json", ...bearer(accessToken) },
  });

const login = (identifier: string, password = PASSWORD) =>
  app.http.inject({ method: "POST", url: "/auth/login", ...json({ identifier, password }) });

const refresh = (refreshToken: string) =>
  app.http.inject({ method: "POST", url: "/auth/refresh", ...json({ refreshToken }) });

function expectProblem(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status, code });
}

async function usersRow(id: string) {
  const db = await openAppDb(app);
  try {
    return await db.kysely
      .selectFrom("users")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
  } finally {
    await db.close();
  }
}

describe("POST /auth/guest", () => {
  it("creates a guest with a fixed 50-hour session", async () => {
    const res = await guestRequest({ username: "Visitor_1" });
    expect(res.statusCode).toBe(201);
    const body = res.json() as GuestResponse;
    expect(body).toMatchObject({
      user: {
        guest: true,
        tier: "guest",
        email: null,
        username: "Visitor_1",
        emailVerified: false,
      },
      sessionExpiresIn: 180_000,
      tokenType: "Bearer",
      returningGuest: false,
    });
    expect(decodeJwt(body.accessToken)).toMatchObject({ guest: true, amr: ["guest"] });
    const me = await app.http.inject({ url: "/users/me", headers: bearer(body.accessToken) });
    expect(me.json()).toMatchObject({ id: body.user.id, guest: true });
  });

  it("keeps the email apart from real accounts' emails, and shows it as the guest's", async () => {
    const guest = await startGuest({ username: "g1", email: "Guest@Example.com" });
    expect(guest.user).toMatchObject({ email: "guest@example.com", emailVerified: false });
    const me = await app.http.inject({ url: "/users/me", headers: bearer(guest.accessToken) });
    expect(me.json()).toMatchObject({ email: "guest@example.com", guest: true });
    const row = await usersRow(guest.user.id);
    expect(row).toMatchObject({
      email: null,
      guest_email: "guest@example.com",
      username_key: null,
    });
    expect(row.password_hash).toBeNull();
  });

  it("signs an earlier guest in again when the email matches", async () => {
    const first = await startGuest({ username: "g1", email: "back@example.com" });
    app.clock.advance(HOUR_MS);
    const again = await startGuest({ username: "other", email: "BACK@example.com" });
    expect(again.returningGuest).toBe(true);
    expect(again.user.id).toBe(first.user.id);
    expect(again.user.username).toBe("g1");
    expect(again.sessionExpiresIn).toBe(180_000);
    expect(decodeJwt(again.accessToken).sid).not.toBe(decodeJwt(first.accessToken).sid);
  });

  it("makes a new guest each time without an email", async () => {
    const a = await startGuest({ username: "same" });
    const b = await startGuest({ username: "same" });
    expect(a.user.id).not.toBe(b.user.id);
    expect(b.returningGuest).toBe(false);
  });

  it("reserves no username: real accounts and other guests may take it", async () => {
    await startGuest({ username: "Taken" });
    const real = await registerUser(app, { username: "taken" });
    expect(real.user.id).toBeDefined();
    expect((await guestRequest({ username: "taken" })).statusCode).toBe(201);
    // The guest cannot be signed in to by that name: it belongs to the real account.
    const res = await login("taken");
    expect(res.statusCode).toBe(200);
    expect(res.json().user.id).toBe(real.user.id);
  });

  it("reserves no email: a real account may register it", async () => {
    const guest = await startGuest({ username: "gg", email: "shared@example.com" });
    const real = await registerUser(app, { email: "shared@example.com" });
    expect(real.user.id).not.toBe(guest.user.id);
    // The guest still comes back by it.
    const again = await startGuest({ username: "gg", email: "shared@example.com" });
    expect(again.user.id).toBe(guest.user.id);
  });

  it("takes a name by the username rule, and refuses a bad one (400)", async () => {
    for (const username of ["dot.ted", `guest_${"y".repeat(44)}`]) {
      expect((await guestRequest({ username })).statusCode).toBe(201);
    }
    for (const username of ["x", "y".repeat(51), "has space", "at@sign"]) {
      expectProblem(await guestRequest({ username }), 400, "validation_failed");
    }
  });

  it("ends after 50 hours: the refresh is refused", async () => {
    const guest = await startGuest({ username: "brief" });
    app.clock.advance(50 * HOUR_MS - 1000);
    const renewed = await refresh(guest.refreshToken);
    expect(renewed.statusCode).toBe(200);
    expect(renewed.json().sessionExpiresIn).toBe(1);
    app.clock.advance(1000);
    expectProblem(await refresh(renewed.json().refreshToken), 401, "token_expired");
  });

  it("shares the public per-IP budget", async () => {
    await app.close();
    app = await startTestApp({ rateLimit: { publicPerIp: 2 } });
    await startGuest({ username: "aa" });
    await startGuest({ username: "bb" });
    expectProblem(await guestRequest({ username: "cc" }), 429, "rate_limited");
  });
});

describe("POST /auth/guest/upgrade", () => {
  it("turns the guest into a full account with the same id", async () => {
    const guest = await startGuest({ username: "Keeper", email: "keeper@example.com" });
    const res = await upgrade(guest.accessToken, {
      email: "Keeper@Example.com",
      password: PASSWORD,
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.user).toMatchObject({
      id: guest.user.id,
      guest: false,
      tier: "free",
      email: "keeper@example.com",
      emailVerified: false,
      username: "Keeper",
    });
    expect(decodeJwt(body.accessToken)).toMatchObject({ sub: guest.user.id, guest: false });
    expect(String(res.headers["set-cookie"])).toMatch(/^lk_access=[^;]+;.*HttpOnly/);
    const me = await app.http.inject({ url: "/users/me", headers: bearer(body.accessToken) });
    expect(me.json()).toMatchObject({ id: guest.user.id, guest: false, tier: "free" });
    expect(await usersRow(guest.user.id)).toMatchObject({
      guest_email: null,
      username_key: "keeper",
    });

    for (const identifier of ["keeper@example.com", "keeper"]) {
      const signedIn = await login(identifier);
      expect(signedIn.statusCode).toBe(200);
      expect(signedIn.json().user.id).toBe(guest.user.id);
    }
    // No longer a guest to come back to by the old email.
    const fresh = await startGuest({ username: "Keeper", email: "keeper@example.com" });
    expect(fresh.returningGuest).toBe(false);
    expect(fresh.user.id).not.toBe(guest.user.id);
  });

  it("ends the guest's other sessions: anyone who knew its email could have opened one", async () => {
    const owner = await startGuest({ username: "owner", email: "shared@example.com" });
    const other = await startGuest({ username: "other", email: "shared@example.com" });
    expect(other.returningGuest).toBe(true);
    const res = await upgrade(owner.accessToken, { email: "mine@example.com", password: PASSWORD });
    expect(res.statusCode).toBe(200);
    const otherMe = await app.http.inject({ url: "/users/me", headers: bearer(other.accessToken) });
    expectProblem(otherMe, 401, "session_revoked");
    expectProblem(await refresh(other.refreshToken), 401, "session_revoked");
    // The upgrading session goes on, its refresh token too.
    const mine = await app.http.inject({
      url: "/users/me",
      headers: bearer(res.json().accessToken),
    });
    expect(mine.json()).toMatchObject({ id: owner.user.id, guest: false });
    expect((await refresh(owner.refreshToken)).statusCode).toBe(200);
  });

  it("a guest with an email makes no API token, even where its tier allows some", async () => {
    await app.close();
    app = await startTestApp({ tiers: { guest: { apiTokens: 5 } } });
    const createToken = (accessToken: string) =>
      app.http.inject({
        method: "POST",
        url: "/tokens",
        ...json({ name: "ci", scopes: ["*"] }),
        headers: { "content-type": "application/json", ...bearer(accessToken) },
      });
    const owner = await startGuest({ username: "owner", email: "kept@example.com" });
    // Whoever knows the email opens a session of the same guest; a token made there would
    // outlive the upgrade that ends that session, and act on the owner's full account.
    const intruder = await startGuest({ username: "intruder", email: "kept@example.com" });
    expect(intruder.returningGuest).toBe(true);
    expectProblem(await createToken(intruder.accessToken), 403, "forbidden");
    expectProblem(await createToken(owner.accessToken), 403, "forbidden");
    const upgraded = await upgrade(owner.accessToken, {
      email: "kept@example.com",
      password: PASSWORD,
    });
    expect(upgraded.statusCode).toBe(200);
    const tokens = await app.http.inject({
      url: "/tokens",
      headers: bearer(upgraded.json().accessToken),
    });
    expect(tokens.json()).toEqual({ tokens: [] });
    // A guest without an email is reached only through its own sessions: its tier decides.
    const solo = await startGuest({ username: "solo" });
    expect((await createToken(solo.accessToken)).statusCode).toBe(201);
  });

  it("takes a new username when one is given", async () => {
    const guest = await startGuest({ username: "temp" });
    const res = await upgrade(guest.accessToken, {
      email: "named@example.com",
      password: PASSWORD,
      username: "Named",
    });
    expect(res.json().user.username).toBe("Named");
    expect((await login("named")).statusCode).toBe(200);
  });

  it("answers 409 for an account that is not a guest", async () => {
    const { accessToken } = await registerUser(app);
    const res = await upgrade(accessToken, { email: "x@example.com", password: PASSWORD });
    expectProblem(res, 409, "conflict");
  });

  it("answers 409 when the email or the username is taken, and leaves the guest as it was", async () => {
    await registerUser(app, { email: "owner@example.com", username: "owner" });
    const guest = await startGuest({ username: "owner" });
    expectProblem(
      await upgrade(guest.accessToken, {
        email: "owner@example.com",
        password: PASSWORD,
        username: "free-name",
      }),
      409,
      "conflict",
    );
    // The guest's own name is taken by a real account: it must pick another.
    expectProblem(
      await upgrade(guest.accessToken, { email: "new@example.com", password: PASSWORD }),
      409,
      "conflict",
    );
    expect(await usersRow(guest.user.id)).toMatchObject({ guest: 1, email: null, tier: "guest" });
    const ok = await upgrade(guest.accessToken, {
      email: "new@example.com",
      password: PASSWORD,
      username: "free-name",
    });
    expect(ok.statusCode).toBe(200);
  });

  it("checks the password rules", async () => {
    const guest = await startGuest({ username: "weak" });
    const res = await upgrade(guest.accessToken, { email: "weak@example.com", password: "short" });
    expectProblem(res, 400, "validation_failed");
  });
});
