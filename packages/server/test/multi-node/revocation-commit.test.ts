import { decodeJwt } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CacheEvent } from "../../src/cache/revocation-bus.js";
import { createLink } from "../../src/flows/mail-links.js";
import {
  bearer,
  gate,
  json,
  postJson,
  registerUser,
  revocationHeldOpen,
  type TestApp,
} from "../helpers.js";
import { PASSWORD, passwordLogin, stepUpToken } from "../mfa-helpers.js";
import { openSocket, type WsClient } from "../ws-client.js";
import { useTwoNodes } from "./two-nodes.js";

const WITHIN_MS = 1000;

/**
 * Revocations across two nodes (one PostgreSQL schema, one Redis): a revocation in a
 * transaction reaches node B only once the transaction has committed, and every flow
 * that revokes is refused at once on the node that ran it and within a second on B.
 */
describe("revocations across two nodes, published after commit", () => {
  const nodes = useTwoNodes();
  const sockets: WsClient[] = [];
  let admin: string;
  beforeAll(async () => {
    await nodes.b.listen();
    const setup = await nodes.a.http.inject({
      method: "POST",
      url: "/auth/setup",
      ...json({ username: "root", email: "root@example.com", password: PASSWORD }),
    });
    expect(setup.statusCode).toBe(201);
    admin = setup.json<{ accessToken: string }>().accessToken;
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.ws.terminate();
  });

  const me = (app: TestApp, accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });

  /** Node B's session and user events from now on, and a marker that shows Redis delivered all before it. */
  const heardOnB = () => {
    const events: CacheEvent[] = [];
    const marker = gate();
    const markerUser = `marker-${Math.random()}`;
    nodes.b.svc.bus.subscribe((event) => {
      if (event.type === "user" && event.userId === markerUser) marker.open();
      else if (event.type === "session" || event.type === "user") events.push(event);
    });
    /** One channel, one publisher: what A published before the marker reached B before it. */
    const drained = async () => {
      nodes.a.svc.bus.publish({ type: "user", userId: markerUser });
      await marker.passed;
      return events;
    };
    return { events, drained };
  };

  /** Polls node B until it refuses the token; fails past WITHIN_MS. */
  const refusedOnB = async (accessToken: string) => {
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < WITHIN_MS) {
      status = (await me(nodes.b, accessToken)).statusCode;
      if (status === 200) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThan(WITHIN_MS);
  };

  it("a transaction rolled back on A tells B nothing: B's socket and cache go on", async () => {
    const { accessToken, user } = await registerUser(nodes.a);
    const socket = await openSocket(nodes.b.url, {
      protocols: ["latchkey.v1", `bearer.${accessToken}`],
    });
    sockets.push(socket);
    expect(await socket.next()).toMatchObject({ type: "authenticated" });
    const { drained } = heardOnB();

    const rollback = new Error("rolled back after the revocation");
    await expect(
      nodes.a.svc.store.transaction(async (tx) => {
        await nodes.a.svc.sessions.revokeAllForUser(user.id, "admin", undefined, tx);
        throw rollback;
      }),
    ).rejects.toBe(rollback);

    expect(await drained()).toEqual([]);
    socket.send({ type: "ping" });
    expect(await socket.next()).toEqual({ type: "pong" });
    expect((await me(nodes.b, accessToken)).statusCode).toBe(200);
  });

  it("B re-reading the session while A's transaction is open still refuses it once A commits", async () => {
    const { accessToken, user } = await registerUser(nodes.a);
    const held = revocationHeldOpen(nodes.a, user.id);
    try {
      await held.written;
      // Not committed: B reads the session live, and caches it.
      expect((await me(nodes.b, accessToken)).statusCode).toBe(200);
    } finally {
      held.commit();
    }
    await held.done;
    expect((await me(nodes.a, accessToken)).statusCode).toBe(401);
    await refusedOnB(accessToken);
  });

  /** Each flow that revokes: arranges a victim session, then ends it through the flow on A. */
  const flows: Array<[string, () => Promise<{ victim: string; act: () => Promise<void> }>]> = [
    [
      "guest upgrade (the guest's other session)",
      async () => {
        const n = Math.random().toString(36).slice(2, 8);
        const guest = { username: `guest${n}`, email: `guest-${n}@example.com` };
        const first = await postJson(nodes.a, "/auth/guest", guest);
        const again = await postJson(nodes.a, "/auth/guest", guest);
        expect(again.json()).toMatchObject({ returningGuest: true });
        return {
          victim: first.json<{ accessToken: string }>().accessToken,
          act: async () => {
            const res = await postJson(
              nodes.a,
              "/auth/guest/upgrade",
              { email: `upgraded-${n}@example.com`, password: PASSWORD },
              bearer(again.json<{ accessToken: string }>().accessToken),
            );
            expect(res.statusCode).toBe(200);
          },
        };
      },
    ],
    [
      "password change (the other session)",
      async () => {
        const here = await registerUser(nodes.a, { password: PASSWORD });
        const elsewhere = await passwordLogin(nodes.a, here.user.email);
        return {
          victim: elsewhere.json<{ accessToken: string }>().accessToken,
          act: async () => {
            const stepUp = await stepUpToken(nodes.a, here.accessToken);
            const res = await postJson(
              nodes.a,
              "/auth/password/change",
              { currentPassword: PASSWORD, newPassword: "a brand new passphrase" },
              { ...bearer(here.accessToken), "x-step-up-token": stepUp },
            );
            expect(res.statusCode).toBe(200);
          },
        };
      },
    ],
    [
      "password reset",
      async () => {
        const { accessToken, user } = await registerUser(nodes.a);
        return {
          victim: accessToken,
          act: async () => {
            const { link } = await createLink(nodes.a.svc, user, "reset_password");
            const token = new URL(link).searchParams.get("token");
            const res = await postJson(nodes.a, "/auth/password/reset", {
              token,
              newPassword: "a brand new passphrase",
            });
            expect(res.statusCode).toBe(204);
          },
        };
      },
    ],
    [
      "email claim by a magic link",
      async () => {
        const { accessToken, user } = await registerUser(nodes.a); // email not yet verified
        return {
          victim: accessToken,
          act: async () => {
            const { link } = await createLink(nodes.a.svc, user, "magic_link");
            const token = new URL(link).searchParams.get("token");
            const res = await postJson(nodes.a, "/auth/magic-link/verify", { token });
            expect(res.statusCode).toBe(200);
          },
        };
      },
    ],
    [
      "account deletion",
      async () => {
        const { accessToken } = await registerUser(nodes.a, { password: PASSWORD });
        return {
          victim: accessToken,
          act: async () => {
            const stepUp = await stepUpToken(nodes.a, accessToken);
            const res = await nodes.a.http.inject({
              method: "DELETE",
              url: "/users/me",
              headers: { ...bearer(accessToken), "x-step-up-token": stepUp },
            });
            expect(res.statusCode).toBe(204);
          },
        };
      },
    ],
    [
      "an admin disabling the account",
      async () => {
        const { accessToken, user } = await registerUser(nodes.a);
        return {
          victim: accessToken,
          act: async () => {
            const res = await nodes.a.http.inject({
              method: "PATCH",
              url: `/admin/users/${user.id}`,
              ...json({ disabled: true }),
              headers: { ...json({}).headers, ...bearer(admin) },
            });
            expect(res.statusCode).toBe(200);
          },
        };
      },
    ],
    [
      "an admin revoking the sessions",
      async () => {
        const { accessToken, user } = await registerUser(nodes.a);
        return {
          victim: accessToken,
          act: async () => {
            const res = await nodes.a.http.inject({
              method: "POST",
              url: `/admin/users/${user.id}/sessions/revoke`,
              headers: bearer(admin),
            });
            expect(res.statusCode).toBeLessThan(300);
          },
        };
      },
    ],
    [
      "a sign-in with singleSession",
      async () => {
        const { accessToken, user } = await registerUser(nodes.a, { password: PASSWORD });
        const patch = await nodes.a.http.inject({
          method: "PATCH",
          url: "/users/me",
          ...json({ singleSession: true }),
          headers: { ...json({}).headers, ...bearer(accessToken) },
        });
        expect(patch.statusCode).toBe(200);
        return {
          victim: accessToken,
          act: async () => {
            expect((await passwordLogin(nodes.a, user.email)).statusCode).toBe(200);
          },
        };
      },
    ],
    [
      "refresh-token reuse",
      async () => {
        const { accessToken, refreshToken } = await registerUser(nodes.a);
        return {
          victim: accessToken,
          act: async () => {
            expect((await postJson(nodes.a, "/auth/refresh", { refreshToken })).statusCode).toBe(
              200,
            );
            nodes.a.clock.advance(60_000); // past the grace window of concurrent refreshes
            const reused = await postJson(nodes.a, "/auth/refresh", { refreshToken });
            expect(reused.json()).toMatchObject({ code: "refresh_token_reused" });
          },
        };
      },
    ],
  ];

  it.each(flows)("%s: refused at once on A, within a second on B", async (_name, arrange) => {
    const { victim, act } = await arrange();
    expect(decodeJwt(victim).sid).toBeTruthy();
    for (const node of [nodes.a, nodes.b]) expect((await me(node, victim)).statusCode).toBe(200);
    await act();
    expect((await me(nodes.a, victim)).statusCode).toBe(401);
    await refusedOnB(victim);
  });
});
