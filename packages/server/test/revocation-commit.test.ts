import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CacheEvent } from "../src/cache/revocation-bus.js";
import { bearer, registerUser, revocationHeldOpen, startTestApp, type TestApp } from "./helpers.js";
import { openSocket, type WsClient } from "./ws-client.js";

/**
 * A revocation made inside a store transaction (password change, reset, guest upgrade,
 * an admin disabling the account, an email claim) is told to the caches and the other
 * nodes only once its transaction has committed. Regression: it was published as the
 * row was written, so a transaction that then rolled back had closed the session's
 * sockets (4401) and told every node of a logout that never happened.
 */
describe("revocations in a transaction are published after it commits", () => {
  let app: TestApp;
  const sockets: WsClient[] = [];
  beforeAll(async () => {
    app = await startTestApp();
    await app.listen();
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.ws.terminate();
  });
  afterAll(() => app.close());

  /** Every session and user event this node's bus carries from now on. */
  const heard = () => {
    const events: CacheEvent[] = [];
    app.svc.bus.subscribe((event) => {
      if (event.type === "session" || event.type === "user") events.push(event);
    });
    return events;
  };
  const me = (accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });

  it("a rolled-back transaction publishes nothing: the session and its socket go on", async () => {
    const { accessToken, user } = await registerUser(app);
    const socket = await openSocket(app.url, {
      protocols: ["latchkey.v1", `bearer.${accessToken}`],
    });
    sockets.push(socket);
    expect(await socket.next()).toMatchObject({ type: "authenticated" });
    expect((await me(accessToken)).statusCode).toBe(200); // cached now
    const events = heard();

    const rollback = new Error("rolled back after the revocation");
    await expect(
      app.svc.store.transaction(async (tx) => {
        await app.svc.sessions.revokeAllForUser(user.id, "admin", undefined, tx);
        throw rollback;
      }),
    ).rejects.toBe(rollback);

    expect(events).toEqual([]);
    socket.send({ type: "ping" });
    expect(await socket.next()).toEqual({ type: "pong" });
    expect((await me(accessToken)).statusCode).toBe(200);
  });

  it("a committed one is published after the commit, never before, and refused at once", async () => {
    const { accessToken, user } = await registerUser(app);
    expect((await me(accessToken)).statusCode).toBe(200);
    const events = heard();
    const held = revocationHeldOpen(app, user.id);
    try {
      await held.written;
      expect(events).toEqual([]); // written, not committed: nobody may act on it yet
    } finally {
      held.commit(); // else the held transaction (on SQLite, the only connection) blocks the rest
    }
    await held.done;

    const sessionId = decodeJwt(accessToken).sid;
    expect(events).toEqual([{ type: "session", sessionId, change: "revoked" }]);
    expect((await me(accessToken)).json()).toMatchObject({ code: "session_revoked" });
  });

  it("a revocation outside a transaction is published at once", async () => {
    const { accessToken } = await registerUser(app);
    const events = heard();
    const sessionId = String(decodeJwt(accessToken).sid);
    expect(await app.svc.sessions.revoke(sessionId, "logout")).toBe(true);
    expect(events).toEqual([{ type: "session", sessionId, change: "revoked" }]);
  });
});
