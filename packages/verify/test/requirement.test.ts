import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  introspectionToken,
  json,
  registerUser,
  startTestApp,
  type TestApp,
} from "../../server/test/helpers.js";
import { enrolledUser, finishMfa, passwordLogin, totpAt } from "../../server/test/mfa-helpers.js";
import { latchkeyExpress } from "../src/express.js";
import { latchkeyPlugin, latchkeyPreHandler } from "../src/fastify.js";
import { latchkeyHono } from "../src/hono.js";
import {
  type ClaimsRequirement,
  createClaimsCheck,
  createVerifier,
  type Verifier,
  type VerifierOptions,
  VerifyError,
} from "../src/index.js";

const ISSUER = "http://latchkey.test"; // the test server's publicUrl, hence `iss`
const ADMIN = { role: "admin" } satisfies ClaimsRequirement;
/** A second factor or a passkey: what a sensitive route asks of the sign-in. */
const STRONG = { amr: ["otp", "hwk"] } satisfies ClaimsRequirement;

/** The principals of one running Latchkey, each with the credential it would present. */
interface Principals {
  admin: string;
  user: string;
  /** Signed in with password and TOTP: `amr` ["pwd","otp"]. */
  mfaUser: string;
  /** API tokens (`lk_…`) with the `introspect` scope and with `profile:read` only. */
  apiTokenWithScope: string;
  apiTokenWithoutScope: string;
}

let latchkey: TestApp;
let who: Principals;
beforeAll(async () => {
  latchkey = await startTestApp();
  await latchkey.listen();
  who = await principals(latchkey);
});
afterAll(() => latchkey.close());

const verifierFor = (options: Partial<VerifierOptions> = {}) =>
  createVerifier({
    issuer: ISSUER,
    jwksUrl: `${latchkey.url}/.well-known/jwks.json`,
    clock: latchkey.clock,
    ...options,
  });

async function principals(app: TestApp): Promise<Principals> {
  const setup = await app.http.inject({
    method: "POST",
    url: "/auth/setup",
    ...json({ username: "root", password: "correct horse battery" }),
  });
  expect(setup.statusCode).toBe(201);
  const user = await registerUser(app);
  const mfa = await enrolledUser(app);
  const pending = await passwordLogin(app, mfa.email);
  const signedIn = await finishMfa(
    app,
    pending.json().mfaToken,
    totpAt(mfa.secret, app.clock.now()),
  );
  expect(signedIn.statusCode).toBe(200);
  const profileToken = await app.http.inject({
    method: "POST",
    url: "/tokens",
    ...json({ name: "profile-reader", scopes: ["profile:read"] }),
    headers: { "content-type": "application/json", ...bearer(user.accessToken) },
  });
  expect(profileToken.statusCode).toBe(201);
  return {
    admin: setup.json().accessToken,
    user: user.accessToken,
    mfaUser: signedIn.json().accessToken,
    apiTokenWithScope: await introspectionToken(app),
    apiTokenWithoutScope: profileToken.json().token,
  };
}

interface Answer {
  status: number;
  header(name: string): string | undefined;
  body: Record<string, unknown>;
}
/** One framework's app: GET `path` with `token` as a Bearer, if any. */
type Call = (path: string, token?: string) => Promise<Answer>;

/** /open needs a valid token; /admin the admin role; /strong a second factor or a passkey. */
const frameworks: Record<string, (verifier: Verifier) => Promise<{ call: Call; close(): void }>> = {
  async fastify(verifier) {
    const app = Fastify();
    const sub = async (req: { latchkey?: { sub: string } }) => ({ sub: req.latchkey?.sub });
    app.get("/open", { preHandler: latchkeyPreHandler(verifier) }, sub);
    app.get("/strong", { preHandler: latchkeyPreHandler(verifier, STRONG) }, sub);
    // /admin through the plugin, which guards every route of its scope.
    await app.register(async (api) => {
      await api.register(latchkeyPlugin, { verifier, require: ADMIN });
      api.get("/admin", sub);
    });
    return {
      call: async (url, token) => {
        const res = await app.inject({ url, headers: token ? bearer(token) : {} });
        const header = (name: string) => res.headers[name] as string | undefined;
        return { status: res.statusCode, header, body: res.json() };
      },
      close: () => void app.close(),
    };
  },
  async express(verifier) {
    const app = express();
    const sub = (req: express.Request, res: express.Response) => {
      res.json({ sub: req.latchkey?.sub });
    };
    app.get("/open", latchkeyExpress(verifier), sub);
    app.get("/admin", latchkeyExpress(verifier, ADMIN), sub);
    app.get("/strong", latchkeyExpress(verifier, STRONG), sub);
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      call: async (path, token) => {
        const res = await fetch(`${base}${path}`, { headers: token ? bearer(token) : {} });
        const header = (name: string) => res.headers.get(name) ?? undefined;
        return { status: res.status, header, body: await res.json() };
      },
      close: () => void server.close(),
    };
  },
  async hono(verifier) {
    const app = new Hono();
    app.get("/open", latchkeyHono(verifier), (c) => c.json({ sub: c.get("latchkey").sub }));
    app.get("/admin", latchkeyHono(verifier, ADMIN), (c) => c.json({ sub: c.get("latchkey").sub }));
    app.get("/strong", latchkeyHono(verifier, STRONG), (c) =>
      c.json({ sub: c.get("latchkey").sub }),
    );
    return {
      call: async (path, token) => {
        const res = await app.request(path, { headers: token ? bearer(token) : {} });
        const header = (name: string) => res.headers.get(name) ?? undefined;
        return { status: res.status, header, body: await res.json() };
      },
      close: () => {},
    };
  },
};

describe.each(Object.entries(frameworks))("%s: a route's requirement", (_name, make) => {
  let call: Call;
  let close: () => void;
  beforeAll(async () => {
    ({ call, close } = await make(verifierFor()));
  });
  afterAll(() => close());

  it("admits the admin to an admin route and refuses a user 403 forbidden, as Latchkey does", async () => {
    expect((await call("/admin", who.admin)).status).toBe(200);
    const refused = await call("/admin", who.user);
    expect(refused.status).toBe(403);
    expect(refused.header("content-type")).toMatch(/^application\/problem\+json/);
    expect(refused.header("cache-control")).toBe("no-store");
    expect(refused.header("www-authenticate")).toBeUndefined(); // not a token to refresh
    expect(refused.body).toEqual({
      type: "urn:latchkey:error:forbidden",
      title: "Forbidden",
      status: 403,
      detail: "This route requires the role admin",
      code: "forbidden",
    });
    // Latchkey's own admin route refuses the same user with the same shape.
    const own = await latchkey.http.inject({ url: "/admin/users", headers: bearer(who.user) });
    expect(own.statusCode).toBe(403);
    expect(Object.keys(own.json()).sort()).toEqual(Object.keys(refused.body).sort());
    expect(own.json()).toMatchObject({
      type: refused.body.type,
      title: "Forbidden",
      code: "forbidden",
    });
  });

  it("answers 401, not 403, without a valid access token: the credential is checked first", async () => {
    const none = await call("/admin");
    expect(none.status).toBe(401);
    expect(none.body.code).toBe("unauthenticated");
    expect(none.header("www-authenticate")).toBe('Bearer realm="latchkey"');
    expect((await call("/admin", "x.y.z")).body.code).toBe("invalid_token");
  });

  it("refuses API tokens 401 whatever their scopes: only Latchkey's own routes take them", async () => {
    for (const token of [who.apiTokenWithScope, who.apiTokenWithoutScope]) {
      for (const path of ["/open", "/admin"]) {
        const res = await call(path, token);
        expect(res.status, path).toBe(401);
        expect(res.body.code).toBe("invalid_token");
      }
    }
  });

  it("admits a sign-in with a second factor to a route that requires one, not a password alone", async () => {
    expect((await call("/strong", who.mfaUser)).status).toBe(200);
    const refused = await call("/strong", who.user); // amr ["pwd"]
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({
      code: "forbidden",
      detail: "This route requires a sign-in with otp or hwk",
    });
    // A route without a requirement takes any valid access token.
    expect((await call("/open", who.user)).status).toBe(200);
  });
});

describe("createClaimsCheck", () => {
  it("takes one value or a list; every field given must hold", async () => {
    const verifier = verifierFor();
    const [admin, mfaUser] = await Promise.all([
      verifier.verify(who.admin),
      verifier.verify(who.mfaUser),
    ]);
    const code = (requirement: ClaimsRequirement, claims: typeof admin) => {
      try {
        createClaimsCheck(requirement)(claims);
        return "ok";
      } catch (err) {
        return err instanceof VerifyError ? `${err.status} ${err.code}` : err;
      }
    };
    expect(code({ role: ["support", "admin"] }, admin)).toBe("ok");
    expect(code({ role: ["support", "admin"] }, mfaUser)).toBe("403 forbidden");
    expect(code({ amr: "otp" }, mfaUser)).toBe("ok");
    expect(code({ role: "user", amr: "otp" }, mfaUser)).toBe("ok");
    expect(code({ role: "admin", amr: "otp" }, admin)).toBe("403 forbidden"); // admin: pwd only
    expect(code({}, admin)).toBe("ok");
  });

  it("refuses a misspelt requirement where the route is declared, never leaving it open", async () => {
    const verifier = verifierFor();
    const bad = [
      { roles: "admin" }, // not a field: ignoring it would admit every valid token
      { scope: "orders:write" },
      { role: [] },
      { role: "" },
      { amr: ["mfa"] }, // RFC 8176 has it, Latchkey never issues it: nobody would pass
      { amr: "totp" },
    ] as unknown as ClaimsRequirement[];
    for (const requirement of bad) {
      expect(() => createClaimsCheck(requirement), JSON.stringify(requirement)).toThrow(TypeError);
      expect(() => latchkeyPreHandler(verifier, requirement)).toThrow(/@latchkey\/verify/);
      expect(() => latchkeyExpress(verifier, requirement)).toThrow(TypeError);
      expect(() => latchkeyHono(verifier, requirement)).toThrow(TypeError);
    }
    const app = Fastify();
    app.register(latchkeyPlugin, { verifier, require: { roles: "admin" } as ClaimsRequirement });
    await expect(app.ready()).rejects.toThrow(/not `roles`/);
  });

  it("checks introspection before the requirement: a revoked token is 401, not 403", async () => {
    const verifier = verifierFor({
      introspection: { apiToken: who.apiTokenWithScope, url: `${latchkey.url}/auth/introspect` },
    });
    const app = new Hono().get("/admin", latchkeyHono(verifier, ADMIN), (c) => c.text("ok"));
    const { accessToken } = await registerUser(latchkey);
    expect((await app.request("/admin", { headers: bearer(accessToken) })).status).toBe(403);
    const logout = await latchkey.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(accessToken),
    });
    expect(logout.statusCode).toBe(204);
    latchkey.clock.advance(5_000); // the cached "active" answer ages out
    const res = await app.request("/admin", { headers: bearer(accessToken) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: "token_inactive" });
  });
});

describe("claims a requirement reads", () => {
  it("refuses an access token without `role` or `amr` as invalid, rather than failing the check with a 500", async () => {
    // Only a holder of the signing key can make one; with HS256 every verifying service is.
    const SECRET = "a shared secret of well over thirty-two characters";
    const verifier = createVerifier({ issuer: ISSUER, secret: SECRET });
    const now = Math.floor(Date.now() / 1000);
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT({ typ: "access", sid: "s", jti: "j", ...claims })
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt" })
        .setIssuer(ISSUER)
        .setAudience("latchkey")
        .setSubject("u")
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(new TextEncoder().encode(SECRET));
    const app = new Hono().get("/strong", latchkeyHono(verifier, STRONG), (c) => c.json({}));
    /** The status, and the problem's code if refused. */
    const ask = async (token: string) => {
      const res = await app.request("/strong", { headers: bearer(token) });
      return `${res.status} ${(await res.json()).code ?? ""}`.trim();
    };
    expect(await ask(await sign({ role: "user", amr: ["pwd", "otp"] }))).toBe("200");
    expect(await ask(await sign({ role: "user" }))).toBe("401 invalid_token");
    expect(await ask(await sign({ role: "user", amr: "otp" }))).toBe("401 invalid_token");
    expect(await ask(await sign({ amr: ["otp"] }))).toBe("401 invalid_token");
  });
});
