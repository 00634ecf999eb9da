import { afterAll, describe, expect, it } from "vitest";
import { call, type Deployment, deployment, type Node, startNode } from "./processes.js";

const PASSWORD = "correct horse battery";
const WORKERS = 8;
/** Kill once this many requests were answered (the machine's speed varies a lot)... */
const ANSWERED_BEFORE_KILL = 150;
/** ...or after this long. */
const MAX_LOAD_MS = 10_000;

/** One session's refresh chain as its client knows it. */
interface Chain {
  token: string;
  /** A refresh was sent and no answer came back: the server may or may not have rotated. */
  inFlight: boolean;
}

const sessionOf = (token: string) => token.split(".")[0] ?? "";
const generationOf = (token: string) => Number(token.split(".")[1]);

/**
 * kill -9 during a load of registrations, logins and refreshes, then a restart: every
 * answer the clients got still holds, and no refresh chain is half-rotated.
 */
describe("a node killed with SIGKILL under load", () => {
  let dep: Deployment | undefined;
  let node: Node | undefined;
  afterAll(async () => {
    await node?.stop();
    await dep?.drop();
  });

  it("loses no committed user or session and leaves every refresh chain usable", async () => {
    dep = deployment({
      // Covers the restart: a rotation the client never heard of is answered from the grace window.
      LATCHKEY_REFRESH_GRACE_SECONDS: "120",
      LATCHKEY_LOGIN_FAILURES_PER_IDENTIFIER: "1000",
      LATCHKEY_LOGIN_FAILURES_PER_IP: "1000",
      LATCHKEY_PUBLIC_RATE_LIMIT: "100000",
    });
    const first = await startNode(dep);
    node = first;
    const users: string[] = []; // ids whose registration was answered 201
    const emails: string[] = [];
    const chains: Chain[] = [];
    let unexpected: string[] = [];
    let answered = 0;

    const worker = async (w: number) => {
      const mine: Chain[] = [];
      for (let i = 0; ; i++) {
        // Mostly refreshes, so some are surely in flight at the kill.
        const action =
          mine.length === 0 || i % 8 === 0 ? "register" : i % 8 === 4 ? "login" : "refresh";
        const chain = mine[i % mine.length];
        try {
          if (action === "register") {
            const email = `crash-${w}-${i}@example.com`;
            const res = await call(first, "POST", "/auth/register", {
              body: { email, password: PASSWORD },
            });
            if (res.status !== 201) unexpected.push(`register ${res.status}`);
            else {
              users.push(String((res.body.user as { id: string }).id));
              emails.push(email);
              mine.push({ token: String(res.body.refreshToken), inFlight: false });
            }
          } else if (action === "login") {
            const identifier = emails[i % emails.length];
            const res = await call(first, "POST", "/auth/login", {
              body: { identifier, password: PASSWORD },
            });
            if (res.status !== 200) unexpected.push(`login ${res.status}`);
            else mine.push({ token: String(res.body.refreshToken), inFlight: false });
          } else if (chain) {
            chain.inFlight = true;
            const res = await call(first, "POST", "/auth/refresh", {
              body: { refreshToken: chain.token },
            });
            if (res.status !== 200) unexpected.push(`refresh ${res.status}`);
            else chain.token = String(res.body.refreshToken);
            chain.inFlight = false;
          }
          answered++;
        } catch {
          chains.push(...mine); // the node is gone: this client stops here
          return;
        }
      }
    };
    const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    const started = performance.now();
    while (answered < ANSWERED_BEFORE_KILL && performance.now() - started < MAX_LOAD_MS) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await first.kill();
    await load;
    expect(unexpected).toEqual([]);
    expect(users.length).toBeGreaterThan(WORKERS);
    expect(chains.some((c) => c.inFlight)).toBe(true);

    node = await startNode(dep, first.port);

    const found = await dep.query<{ id: string }>("select id from users where id = any($1)", [
      users,
    ]);
    expect(found.length).toBe(users.length);
    const rows = await dep.query<{ id: string; generation: number; revoked_at: string | null }>(
      "select id, generation, revoked_at from sessions where id = any($1)",
      [chains.map((c) => sessionOf(c.token))],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const chain of chains) {
      const row = byId.get(sessionOf(chain.token));
      expect(row?.revoked_at ?? null).toBeNull();
      // Rotated exactly as far as the client saw, or one step further if it never heard back.
      const known = generationOf(chain.token);
      expect(chain.inFlight ? [known, known + 1] : [known]).toContain(row?.generation);
    }

    // Every chain goes on: the token the client holds works (as the current one, or
    // within the grace window as the predecessor of an unseen rotation), and so does the next.
    unexpected = [];
    const restarted = node;
    await Promise.all(
      chains.map(async (chain) => {
        for (let step = 0; step < 2; step++) {
          const res = await call(restarted, "POST", "/auth/refresh", {
            body: { refreshToken: chain.token },
          });
          if (res.status !== 200)
            unexpected.push(`refresh after restart ${res.status} ${String(res.body.code)}`);
          else chain.token = String(res.body.refreshToken);
        }
      }),
    );
    expect(unexpected).toEqual([]);
  });
});
