import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { totpAt } from "../mfa-helpers.js";
import {
  bearerHeader,
  call,
  type Deployment,
  decodeJwt,
  deployment,
  type Node,
  startNode,
} from "./processes.js";

const PASSWORD = "correct horse battery";
const STEP_MS = 30_000;

/**
 * Two `latchkey serve` processes of one deployment (the same PostgreSQL schema, Redis
 * and key prefix), as behind a load balancer: what one node does, the other honours.
 */
describe("two server processes on PostgreSQL + Redis", () => {
  let dep: Deployment;
  let a: Node;
  let b: Node;
  beforeAll(async () => {
    dep = deployment();
    a = await startNode(dep); // applies the migrations first
    b = await startNode(dep);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await dep?.drop();
  });

  const register = async (node: Node, email: string, username?: string) => {
    const res = await call(node, "POST", "/auth/register", {
      body: { email, password: PASSWORD, ...(username ? { username } : {}) },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const me = (node: Node, token: unknown) =>
    call(node, "GET", "/users/me", { headers: bearerHeader(token) });

  it("a logout on node A is refused on node B within a second", async () => {
    const { accessToken } = await register(a, "logout@example.com");
    expect((await me(b, accessToken)).status).toBe(200); // B has it cached now
    expect(
      (await call(a, "POST", "/auth/logout", { headers: bearerHeader(accessToken) })).status,
    ).toBe(204);
    const started = performance.now();
    let status = 200;
    while (status === 200 && performance.now() - started < 1000) {
      status = (await me(b, accessToken)).status;
    }
    expect(status).toBe(401);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("the per-identifier login limit holds across both nodes", async () => {
    await register(a, "limit@example.com", "shared_limit");
    const attempt = (node: Node) =>
      call(node, "POST", "/auth/login", {
        body: { identifier: "shared_limit", password: "wrong password!" },
      });
    for (let i = 0; i < 5; i++) expect((await attempt(i % 2 ? a : b)).status).toBe(401);
    for (const node of [a, b]) {
      const blocked = await attempt(node);
      expect(blocked.status).toBe(429);
      expect(blocked.body.code).toBe("rate_limited");
    }
    // Even the right password waits out the limit, on either node.
    const right = await call(b, "POST", "/auth/login", {
      body: { identifier: "limit@example.com", password: PASSWORD },
    });
    expect(right.status).toBe(429);
  });

  it("a key rotated with `latchkey keys rotate` signs on node A and verifies on node B", async () => {
    const before = (await call(a, "GET", "/.well-known/jwks.json")).body.keys as unknown[];
    const { stdout: out } = await dep.cli("keys", "rotate");
    const kid = /New signing key (\S+);/.exec(out)?.[1];
    expect(kid).toBeTruthy();
    // A hears of it over Redis; poll rather than sleep.
    let signedWith: unknown;
    let accessToken: unknown;
    const started = performance.now();
    while (signedWith !== kid && performance.now() - started < 3000) {
      const login = await call(a, "POST", "/auth/login", {
        body: { identifier: "logout@example.com", password: PASSWORD },
      });
      accessToken = login.body.accessToken;
      signedWith = decodeJwt(accessToken).header.kid;
    }
    expect(signedWith).toBe(kid);
    expect((await me(b, accessToken)).status).toBe(200);
    const after = (await call(b, "GET", "/.well-known/jwks.json")).body.keys as unknown[];
    expect(after.length).toBe(before.length + 1); // the old key stays published
  });

  it("a TOTP code used on node A is refused on node B", async () => {
    const { accessToken } = await register(a, "totp@example.com");
    const setup = await call(a, "POST", "/mfa/totp/setup", { headers: bearerHeader(accessToken) });
    const secret = String(setup.body.secret);
    const enable = await call(a, "POST", "/mfa/totp/enable", {
      headers: bearerHeader(accessToken),
      body: { code: totpAt(secret, Date.now()) },
    });
    expect(enable.status).toBe(200);
    // The next step's code: accepted as one step of drift, and not yet claimed by enable.
    const code = totpAt(secret, Date.now() + STEP_MS);
    const signIn = async (node: Node) => {
      const pending = await call(node, "POST", "/auth/login", {
        body: { identifier: "totp@example.com", password: PASSWORD },
      });
      expect(pending.body.mfaRequired).toBe(true);
      return call(node, "POST", "/auth/login/mfa", {
        headers: { "x-mfa-token": String(pending.body.mfaToken) },
        body: { code },
      });
    };
    expect((await signIn(a)).status).toBe(200);
    const replayed = await signIn(b);
    expect(replayed.status).toBe(400);
    expect(replayed.body.code).toBe("invalid_code");
  });
});
