import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import Fastify from "fastify";
import { Hono } from "hono";
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  bearer,
  json,
  registerUser,
  startTestApp,
  type TestApp,
} from "../../server/test/helpers.js";
import { enrolledUser, passwordLogin, stepUpToken } from "../../server/test/mfa-helpers.js";
import { latchkeyExpress } from "../src/express.js";
import { latchkeyPlugin, latchkeyPreHandler } from "../src/fastify.js";
import { latchkeyHono } from "../src/hono.js";
import { createVerifier, type VerifierOptions, VerifyError } from "../src/index.js";

const ISSUER = "http://latchkey.test"; // the test server's publicUrl, hence `iss`
let latchkey: TestApp;
beforeEach(async () => {
  latchkey = await startTestApp();
  await latchkey.listen();
});
afterEach(() => latchkey.close());

/** A verifier of the running Latchkey, on its clock; no JWKS cooldown so rotation shows at once. */
const verifierFor = (options: Partial<VerifierOptions> = {}) =>
  createVerifier({
    issuer: ISSUER,
    jwksUrl: `${latchkey.url}/.well-known/jwks.json`,
    clock: latchkey.clock,
    jwksCooldownSeconds: 0,
    ...options,
  });

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("the token was accepted");
    },
    (err: unknown) => (err instanceof VerifyError ? err.code : err),
  );

async function introspectToken(): Promise<string> {
  const owner = await registerUser(latchkey);
  const res = await latchkey.http.inject({
    method: "POST",
    url: "/tokens",
    ...json({ name: "orders-service", scopes: ["introspect"] }),
    headers: { "content-type": "application/json", ...bearer(owner.accessToken) },
  });
  return res.json().token;
}

describe("createVerifier with Latchkey's HS256 secret", () => {
  const SECRET = "a shared secret of well over thirty-two characters";
  it("verifies HS256 tokens with the secret alone, and refuses EdDSA ones and other secrets", async () => {
    const hs = await startTestApp({ jwtSecret: SECRET });
    try {
      const { accessToken, user } = await registerUser(hs);
      expect(decodeProtectedHeader(accessToken).alg).toBe("HS256");
      const withSecret = (secret: string) =>
        createVerifier({ issuer: ISSUER, secret, clock: hs.clock });
      expect((await withSecret(SECRET).verify(accessToken)).sub).toBe(user.id);
      expect(await refusal(withSecret(`${SECRET}!`).verify(accessToken))).toBe("invalid_token");
      // An EdDSA token, good against the JWKS, is not HS256: refused before any key is tried.
      const eddsa = await registerUser(latchkey);
      expect(await refusal(withSecret(SECRET).verify(eddsa.accessToken))).toBe("invalid_token");
    } finally {
      await hs.close();
    }
  });

  it("takes no JWKS or algorithms beside the secret, and no short secret", () => {
    const make = (options: Partial<VerifierOptions>) => () =>
      createVerifier({ issuer: ISSUER, ...options });
    expect(make({ secret: "short" })).toThrow(TypeError);
    expect(make({ secret: SECRET, algorithms: ["HS256"] })).toThrow(TypeError);
    expect(make({ secret: SECRET, jwksUrl: `${ISSUER}/.well-known/jwks.json` })).toThrow(TypeError);
  });
});

describe("createVerifier", () => {
  it("verifies a Latchkey access token and returns its typed claims", async () => {
    const { accessToken, user } = await registerUser(latchkey, { username: "grace" });
    const claims = await verifierFor().verify(accessToken);
    expect(claims).toMatchObject({
      sub: user.id,
      username: "grace",
      typ: "access",
      aud: "latchkey",
    });
    expect(claims.amr).toEqual(["pwd"]);
  });

  it("takes the issuer as Latchkey's publicUrl is written, trailing slash included", async () => {
    // LATCHKEY_PUBLIC_URL=http://latchkey.test/ issues `iss` without the slash.
    const { accessToken, user } = await registerUser(latchkey);
    expect((await verifierFor({ issuer: `${ISSUER}/` }).verify(accessToken)).sub).toBe(user.id);
  });

  it("refuses a wrong audience, issuer or algorithm, a forged HS256 twin and an expired token", async () => {
    const { accessToken } = await registerUser(latchkey);
    expect(await refusal(verifierFor({ audience: "billing" }).verify(accessToken))).toBe(
      "invalid_token",
    );
    expect(
      await refusal(verifierFor({ issuer: "https://other.example" }).verify(accessToken)),
    ).toBe("invalid_token");
    expect(await refusal(verifierFor({ algorithms: ["ES256"] }).verify(accessToken))).toBe(
      "invalid_token",
    );
    // Same header and claims, MACed with HS256: the algorithm pin refuses it.
    const { kid } = decodeProtectedHeader(accessToken);
    const payload = JSON.parse(
      Buffer.from(accessToken.split(".")[1] as string, "base64url").toString(),
    );
    const forged = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid })
      .sign(new TextEncoder().encode("a shared secret of thirty-two bytes!"));
    expect(await refusal(verifierFor().verify(forged))).toBe("invalid_token");
    expect(await refusal(verifierFor().verify("not.a.jwt"))).toBe("invalid_token");
    latchkey.clock.advance(16 * 60_000);
    expect(await refusal(verifierFor().verify(accessToken))).toBe("token_expired");
  });

  it("refuses every other Latchkey JWT signed by the same key: MFA pending, step-up, OAuth link", async () => {
    // RFC 8725 §3.11: each has its own `typ`, so none passes where an access token is due.
    const mfa = await enrolledUser(latchkey);
    const pending = await passwordLogin(latchkey, mfa.email);
    const stepUp = await stepUpToken(latchkey, mfa.accessToken);
    const link = await latchkey.http.inject({
      method: "POST",
      url: "/auth/oauth/link-token",
      headers: { ...bearer(mfa.accessToken), "x-step-up-token": stepUp },
    });
    expect(link.statusCode).toBe(200);
    const verifier = verifierFor();
    // The same verifier takes the user's access token: the refusals are the type's, not the key's.
    expect((await verifier.verify(mfa.accessToken)).sub).toBe(mfa.userId);
    for (const token of [pending.json().mfaToken, stepUp, link.json().linkToken]) {
      expect(await refusal(verifier.verify(token))).toBe("invalid_token");
      // Even for a service that sets the audience those tokens carry (Latchkey's own URL).
      expect(await refusal(verifierFor({ audience: ISSUER }).verify(token))).toBe("invalid_token");
    }
  });

  it("follows a key rotation: a token with the new kid refetches the JWKS; old tokens still verify", async () => {
    const verifier = verifierFor();
    const before = await registerUser(latchkey);
    await verifier.verify(before.accessToken); // JWKS fetched and cached
    const { kid } = await latchkey.svc.keys.rotate();
    const after = await registerUser(latchkey);
    expect(decodeProtectedHeader(after.accessToken).kid).toBe(kid);
    expect(decodeProtectedHeader(before.accessToken).kid).not.toBe(kid);
    expect((await verifier.verify(after.accessToken)).sub).toBe(after.user.id);
    expect((await verifier.verify(before.accessToken)).sub).toBe(before.user.id);
  });

  it("a rotation just after a JWKS fetch fails no verification: a new kid waits for the next fetch", async () => {
    // The cooldown (1 s here, 5 s by default) started with the fetch just made, and Latchkey
    // signs with the new key at once: its tokens used to be refused until the cooldown ended.
    const verifier = verifierFor({ jwksCooldownSeconds: 1 });
    const before = await registerUser(latchkey);
    await verifier.verify(before.accessToken);
    await latchkey.svc.keys.rotate();
    const after = await Promise.all([registerUser(latchkey), registerUser(latchkey)]);
    const claims = await Promise.all(after.map((a) => verifier.verify(a.accessToken)));
    expect(claims.map((c) => c.sub)).toEqual(after.map((a) => a.user.id));
    expect((await verifier.verify(before.accessToken)).sub).toBe(before.user.id);
  });

  it("refuses a revoked session when introspection is on, after at most cacheSeconds", async () => {
    const apiToken = await introspectToken();
    const checked = verifierFor({
      introspection: { apiToken, url: `${latchkey.url}/auth/introspect` },
    });
    const unchecked = verifierFor();
    const { accessToken } = await registerUser(latchkey);
    expect((await checked.verify(accessToken)).typ).toBe("access");
    const logout = await latchkey.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(accessToken),
    });
    expect(logout.statusCode).toBe(204);
    expect((await checked.verify(accessToken)).typ).toBe("access"); // the cached answer
    latchkey.clock.advance(5_000);
    expect(await refusal(checked.verify(accessToken))).toBe("token_inactive");
    // A JWT alone cannot know: without introspection the signature still holds.
    expect((await unchecked.verify(accessToken)).typ).toBe("access");
  });

  it("asks Latchkey once for a burst of concurrent requests with one token", async () => {
    const apiToken = await introspectToken();
    const verifier = verifierFor({
      introspection: { apiToken, url: `${latchkey.url}/auth/introspect` },
    });
    const { accessToken } = await registerUser(latchkey);
    await verifier.verify((await registerUser(latchkey)).accessToken); // JWKS fetched
    const introspections: string[] = [];
    const realFetch = globalThis.fetch;
    vi.stubGlobal("fetch", (input: string | URL | Request, init?: RequestInit) => {
      if (String(input).endsWith("/auth/introspect")) introspections.push(String(input));
      return realFetch(input, init); // counted, then sent for real
    });
    try {
      const claims = await Promise.all(
        Array.from({ length: 20 }, () => verifier.verify(accessToken)),
      );
      expect(claims.every((c) => c.typ === "access")).toBe(true);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(introspections).toHaveLength(1);
  });

  it("fails closed when Latchkey cannot be reached", async () => {
    const { accessToken } = await registerUser(latchkey);
    const apiToken = await introspectToken();
    const down = verifierFor({
      introspection: { apiToken, url: "http://127.0.0.1:9/auth/introspect" },
    });
    expect(await refusal(down.verify(accessToken))).toBe("unavailable");
    const noJwks = verifierFor({ jwksUrl: "http://127.0.0.1:9/.well-known/jwks.json" });
    expect(await refusal(noJwks.verify(accessToken))).toBe("unavailable");
  });

  it("fetches a failing JWKS at most once per cooldown, however many forged kids arrive", async () => {
    const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    const jwk = { ...(await exportJWK(publicKey)), kid: "real", alg: "EdDSA", use: "sig" };
    let fetches = 0;
    let failing = false;
    const jwksServer = createServer((_req, res) => {
      fetches++;
      if (failing) res.writeHead(503).end();
      else
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(`{"keys":[${JSON.stringify(jwk)}]}`);
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    let now = Date.parse("2026-01-01T00:00:00Z");
    const verifier = createVerifier({
      issuer: ISSUER,
      jwksUrl: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`,
      jwksCooldownSeconds: 1,
    });
    vi.spyOn(Date, "now").mockImplementation(() => now); // the verifier's default clock
    const sign = (kid: string) =>
      new SignJWT({ typ: "access", sid: "s", jti: "j", role: "user", amr: ["pwd"] })
        .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid })
        .setIssuer(ISSUER)
        .setAudience("latchkey")
        .setSubject("u")
        .setIssuedAt(now / 1000)
        .setExpirationTime(now / 1000 + 3600)
        .sign(privateKey);
    const forgedFlood = async () => {
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => sign(`forged-${i}`)));
      return new Set(await Promise.all(tokens.map((t) => refusal(verifier.verify(t)))));
    };
    try {
      expect((await verifier.verify(await sign("real"))).sub).toBe("u");
      expect(fetches).toBe(1);
      // Within the cooldown the forged kids wait for the next allowed fetch, and share it.
      expect(await forgedFlood()).toEqual(new Set(["invalid_token"]));
      expect(fetches).toBe(2);
      failing = true; // Latchkey in trouble: its JWKS answers 503
      now += 2_000;
      expect(await forgedFlood()).toEqual(new Set(["unavailable"]));
      expect(fetches).toBe(3); // one attempt, not one per forged kid
      expect((await verifier.verify(await sign("real"))).sub).toBe("u"); // held keys still serve
      await forgedFlood();
      expect(fetches).toBe(4);
    } finally {
      vi.restoreAllMocks();
      jwksServer.close();
    }
  });

  it("rejects bad options as a programmer error", () => {
    expect(() => verifierFor({ algorithms: ["HS256"] })).toThrow(TypeError);
    expect(() => verifierFor({ algorithms: [] })).toThrow(TypeError);
    expect(() => verifierFor({ issuer: "not a url" })).toThrow(/@latchkey\/verify/);
    expect(() => verifierFor({ introspection: { apiToken: "secret" } })).toThrow(TypeError);
    // A new key's first tokens wait out the cooldown: longer would outlast clients' timeouts.
    expect(() => verifierFor({ jwksCooldownSeconds: 31 })).toThrow(/at most 30/);
    // A day of leeway would keep a 15-minute access token alive for a day.
    expect(() => verifierFor({ clockToleranceSeconds: 86_400 })).toThrow(/at most 300/);
  });
});

describe("adapters", () => {
  it("Fastify: the plugin and the preHandler admit a valid token and answer 401 problems", async () => {
    const verifier = verifierFor();
    const app = Fastify();
    app.get("/one", { preHandler: latchkeyPreHandler(verifier) }, async (req) => ({
      sub: req.latchkey?.sub,
    }));
    await app.register(async (api) => {
      await api.register(latchkeyPlugin, { verifier });
      api.get("/all", async (req) => ({ sub: req.latchkey?.sub }));
    });
    const { accessToken, user } = await registerUser(latchkey);
    for (const url of ["/one", "/all"]) {
      const ok = await app.inject({ url, headers: bearer(accessToken) });
      expect(ok.json()).toEqual({ sub: user.id });
      const none = await app.inject({ url });
      expect(none.statusCode).toBe(401);
      expect(none.headers["www-authenticate"]).toBe('Bearer realm="latchkey"');
      expect(none.headers["content-type"]).toMatch(/^application\/problem\+json/);
      const bad = await app.inject({ url, headers: bearer("x.y.z") });
      expect(bad.json()).toMatchObject({
        type: "urn:latchkey:error:invalid_token",
        status: 401,
        code: "invalid_token",
      });
      expect(bad.headers["www-authenticate"]).toMatch(/error="invalid_token"/);
      expect(bad.headers["cache-control"]).toBe("no-store");
    }
    await app.close();
  });

  it("Express: the middleware sets req.latchkey or answers 401", async () => {
    const app = express();
    app.use(latchkeyExpress(verifierFor()));
    app.get("/", (req, res) => {
      res.json({ sub: req.latchkey?.sub });
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const { accessToken, user } = await registerUser(latchkey);
      const ok = await fetch(base, { headers: bearer(accessToken) });
      expect(await ok.json()).toEqual({ sub: user.id });
      const bad = await fetch(base, { headers: bearer(`${accessToken}x`) });
      expect(bad.status).toBe(401);
      expect(bad.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(await bad.json()).toMatchObject({ code: "invalid_token" });
    } finally {
      server.close();
    }
  });

  it("Hono: the middleware sets c.get('latchkey') or answers 401", async () => {
    const app = new Hono().use("*", latchkeyHono(verifierFor()));
    app.get("/", (c) => c.json({ sub: c.get("latchkey").sub }));
    const { accessToken, user } = await registerUser(latchkey);
    const ok = await app.request("/", { headers: bearer(accessToken) });
    expect(await ok.json()).toEqual({ sub: user.id });
    const none = await app.request("/");
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ code: "unauthenticated" });
  });

  it("answers another scheme like no credential, as Latchkey does (RFC 6750 §3.1)", async () => {
    const app = new Hono().use("*", latchkeyHono(verifierFor()));
    app.get("/", (c) => c.text("ok"));
    for (const authorization of ["Basic dXNlcjpwYXNz", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"]) {
      const res = await app.request("/", { headers: { authorization } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="latchkey"');
      expect(await res.json()).toMatchObject({ code: "unauthenticated" });
    }
    // A Bearer header without a usable token was a token, and a refused one.
    for (const authorization of ["Bearer", "bearer a b"]) {
      const res = await app.request("/", { headers: { authorization } });
      expect(res.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
      expect(await res.json()).toMatchObject({ code: "invalid_token" });
    }
  });
});
