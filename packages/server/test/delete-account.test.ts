import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  bearer,
  holdPasswordChecks,
  json,
  openAppDb,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";
import { enrolledUser, PASSWORD, stepUpToken } from "./mfa-helpers.js";

let app: TestApp;
beforeEach(async () => {
  app = await startTestApp();
});
afterEach(() => app.close());

const remove = (accessToken: string, stepUp?: string) =>
  app.http.inject({
    method: "DELETE",
    url: "/users/me",
    headers: { ...bearer(accessToken), ...(stepUp ? { "x-step-up-token": stepUp } : {}) },
  });

describe("DELETE /users/me", () => {
  it("needs a step-up token (403 step_up_required)", async () => {
    const { accessToken } = await registerUser(app);
    expect((await remove(accessToken)).json()).toMatchObject({ code: "step_up_required" });
  });

  it("lets an account with nothing to step up with (a guest) delete itself just after signing in", async () => {
    const guest = async (username: string, email?: string) => {
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/guest",
        ...json({ username, ...(email ? { email } : {}) }),
      });
      return res.json() as { accessToken: string };
    };
    // Signing in is its step-up, for as long as a step-up grant lives (5 minutes)...
    const fresh = await guest("fresh");
    expect((await remove(fresh.accessToken)).statusCode).toBe(204);
    // ...then it signs in again (a returning guest gets a new session).
    const later = await guest("later", "later@example.com");
    app.clock.advance(5 * 60_000);
    expect((await remove(later.accessToken)).json()).toMatchObject({ code: "step_up_required" });
    const again = await guest("later", "later@example.com");
    expect((await remove(again.accessToken)).statusCode).toBe(204);
  });

  it("lets a fresh guest through even with a step-up cookie another session left in the browser", async () => {
    // Someone else stepped up in this browser and its cookie outlived that session (a
    // browser that kept it, a request that never reached logout).
    const earlier = await registerUser(app, { password: PASSWORD });
    const leftover = await stepUpToken(app, earlier.accessToken);
    const guest = await app.http.inject({
      method: "POST",
      url: "/auth/guest",
      ...json({ username: "leftover" }),
    });
    const res = await app.http.inject({
      method: "DELETE",
      url: "/users/me",
      headers: { ...bearer(guest.json<{ accessToken: string }>().accessToken) },
      cookies: { lk_step_up: leftover },
    });
    expect(res.statusCode).toBe(204);
  });

  it("answers a sign-in that the deletion overtook 401 user_not_found, not a 500", async () => {
    const email = "going@example.com";
    const { accessToken } = await registerUser(app, { email, password: PASSWORD });
    const stepUp = await stepUpToken(app, accessToken);
    // Held until the account is gone: the session insert then names no user.
    const held = holdPasswordChecks(app);
    try {
      const login = app.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: email, password: PASSWORD }),
      });
      await held.checking;
      expect((await remove(accessToken, stepUp)).statusCode).toBe(204);
      held.release();
      expect((await login).json()).toMatchObject({ status: 401, code: "user_not_found" });
    } finally {
      held.restore();
    }
    expect(await app.svc.store.users.update("no-such-user", { singleSession: true }, 0)).toBe(
      undefined,
    );
  });

  it("removes the user, every session, API token and MFA data at once", async () => {
    const user = await enrolledUser(app);
    const other = await app.http.inject({
      method: "POST",
      url: "/auth/login",
      ...json({ identifier: user.email, password: PASSWORD }),
    });
    expect(other.json()).toMatchObject({ mfaRequired: true });
    const token = await app.http.inject({
      method: "POST",
      url: "/tokens",
      headers: { ...bearer(user.accessToken), "content-type": "application/json" },
      payload: JSON.stringify({ name: "ci", scopes: ["profile:read"] }),
    });
    const apiToken = token.json<{ token: string }>().token;
    expect(
      (await app.http.inject({ url: "/users/me", headers: bearer(apiToken) })).statusCode,
    ).toBe(200);

    const res = await remove(user.accessToken, await stepUpToken(app, user.accessToken));
    expect(res.statusCode).toBe(204);
    const gone = await app.http.inject({ url: "/users/me", headers: bearer(user.accessToken) });
    expect(gone.statusCode).toBe(401);
    expect(gone.json()).toMatchObject({ code: "user_not_found" });
    expect(
      (await app.http.inject({ url: "/users/me", headers: bearer(apiToken) })).statusCode,
    ).toBe(401);
    const refresh = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: user.refreshToken }),
    });
    expect(refresh.statusCode).toBe(401);

    const db = await openAppDb(app);
    try {
      for (const table of ["users", "sessions", "api_tokens", "backup_codes"] as const) {
        const rows = await db.kysely
          .selectFrom(table)
          .select("id")
          .where(table === "users" ? "id" : "user_id", "=", user.userId)
          .execute();
        expect(rows, table).toHaveLength(0);
      }
    } finally {
      await db.close();
    }
    // The email is free again.
    expect((await registerUser(app, { email: user.email })).user.id).not.toBe(user.userId);
  });

  it("refuses to delete the last enabled admin (409 conflict), as the admin API does", async () => {
    const setup = await app.http.inject({
      method: "POST",
      url: "/auth/setup",
      ...json({ username: "root", password: PASSWORD }),
    });
    const root = setup.json<{ accessToken: string; user: { id: string } }>();
    const alone = await remove(root.accessToken, await stepUpToken(app, root.accessToken));
    expect(alone.statusCode).toBe(409);
    expect(alone.json()).toMatchObject({ code: "conflict" });
    expect(await app.svc.store.users.findById(root.user.id)).toBeDefined();

    // With another admin in place, the first may go.
    const other = await registerUser(app, { password: PASSWORD });
    await app.svc.store.users.adminUpdate(other.user.id, { role: "admin" }, app.clock.now());
    const res = await remove(root.accessToken, await stepUpToken(app, root.accessToken));
    expect(res.statusCode).toBe(204);
  });
});
