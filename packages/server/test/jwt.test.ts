import {
  base64url,
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWTHeaderParameters,
  type JWTPayload,
  SignJWT,
  UnsecuredJWT,
} from "jose";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { bearer, registerUser, startTestApp, type TestApp } from "./helpers.js";

/**
 * Tokens tampered with by hand, per RFC 8725 (JWT Best Current Practices). Each
 * refusal is meaningful because `resign` with no changes is first shown to pass.
 */

const ACCESS_TTL_MS = 15 * 60_000;
const TOLERANCE_MS = 5_000;

const b64json = (value: unknown) => base64url.encode(JSON.stringify(value));

interface Patch {
  header?: Partial<JWTHeaderParameters> & Record<string, unknown>;
  claims?: JWTPayload;
  key?: CryptoKey | Uint8Array;
}

/** The same token with a changed header or claims, signed with the server's own key by default. */
async function resign(app: TestApp, token: string, patch: Patch = {}): Promise<string> {
  const header = { ...decodeProtectedHeader(token), ...patch.header } as JWTHeaderParameters;
  const claims = { ...decodeJwt(token), ...patch.claims };
  return new SignJWT(claims)
    .setProtectedHeader(header)
    .sign(patch.key ?? (app.svc.keys.keyring.signing.key as CryptoKey));
}

describe("access-token verification (RFC 8725)", () => {
  let app: TestApp;
  let token: string;
  beforeEach(async () => {
    app = await startTestApp();
    ({ accessToken: token } = await registerUser(app));
  });
  afterEach(() => app.close());

  const me = (accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });
  async function expectRefused(accessToken: string, code = "invalid_token") {
    const res = await me(accessToken);
    expect(res.statusCode).toBe(401);
    expect(res.headers["content-type"]).toContain("application/problem+json");
    expect(res.json()).toMatchObject({ status: 401, code });
  }

  it("accepts the issued token, and the same token re-signed with the server's key", async () => {
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: "EdDSA", typ: "at+jwt" });
    expect(decodeJwt(token)).toMatchObject({
      iss: "http://latchkey.test",
      aud: "latchkey",
      typ: "access",
    });
    expect((await me(token)).statusCode).toBe(200);
    expect((await me(await resign(app, token, { claims: { jti: "other" } }))).statusCode).toBe(200);
  });

  describe("algorithm (§2.1, §3.1)", () => {
    it('refuses alg "none", with and without the real kid', async () => {
      const { kid } = decodeProtectedHeader(token);
      const claims = decodeJwt(token);
      const withKid = `${b64json({ alg: "none", kid, typ: "at+jwt" })}.${b64json(claims)}.`;
      await expectRefused(withKid);
      // Keep the real signature but claim "none".
      const [, payload, signature] = token.split(".");
      await expectRefused(
        `${b64json({ alg: "none", kid, typ: "at+jwt" })}.${payload}.${signature}`,
      );
      await expectRefused(new UnsecuredJWT(claims).encode());
    });

    it("refuses HS256 tokens keyed with the Ed25519 public key (algorithm confusion)", async () => {
      const { kid } = decodeProtectedHeader(token);
      const jwks = (await app.http.inject({ url: "/.well-known/jwks.json" })).json<{
        keys: Array<{ kid: string; x: string }>;
      }>();
      const jwk = jwks.keys.find((k) => k.kid === kid);
      expect(jwk).toBeDefined();
      const publicKey = app.svc.keys.keyring.find(kid as string)?.key as CryptoKey;
      const secrets = [
        base64url.decode(jwk?.x ?? ""), // raw public key bytes
        new TextEncoder().encode(jwk?.x ?? ""), // the JWK `x` member as text
        new TextEncoder().encode(JSON.stringify(jwk)), // the whole JWK
        new TextEncoder().encode(await exportSPKI(publicKey)), // PEM, the classic attack
      ];
      for (const key of secrets) {
        await expectRefused(await resign(app, token, { header: { alg: "HS256" }, key }));
      }
    });

    it("refuses a token signed by another Ed25519 key under the server's kid", async () => {
      const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
      await expectRefused(await resign(app, token, { key: privateKey }));
    });

    it("refuses a tampered payload under the original signature", async () => {
      const [header, , signature] = token.split(".");
      const claims = { ...decodeJwt(token), role: "admin" };
      await expectRefused(`${header}.${b64json(claims)}.${signature}`);
    });
  });

  describe("key selection", () => {
    it("refuses an unknown kid, a missing kid and a foreign key with its own kid", async () => {
      await expectRefused(await resign(app, token, { header: { kid: "no-such-key" } }));
      await expectRefused(await resign(app, token, { header: { kid: undefined } }));
      const foreign = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
      const foreignKid = (await exportJWK(foreign.publicKey)).x as string;
      await expectRefused(
        await resign(app, token, { header: { kid: foreignKid }, key: foreign.privateKey }),
      );
    });
  });

  describe("claims (§3.8, §3.9, §3.11)", () => {
    it("refuses a wrong iss", async () => {
      await expectRefused(await resign(app, token, { claims: { iss: "http://evil.test" } }));
      await expectRefused(await resign(app, token, { claims: { iss: undefined } }));
    });

    it("refuses a wrong aud", async () => {
      await expectRefused(await resign(app, token, { claims: { aud: "another-service" } }));
      await expectRefused(await resign(app, token, { claims: { aud: undefined } }));
    });

    it('refuses a typ claim other than "access"', async () => {
      for (const typ of ["refresh", "mfa", "step_up", undefined]) {
        await expectRefused(await resign(app, token, { claims: { typ } }));
      }
    });

    it('refuses a typ header other than "at+jwt"', async () => {
      for (const typ of ["JWT", "application/at+jwt+x", undefined]) {
        await expectRefused(await resign(app, token, { header: { typ } }));
      }
    });

    it("refuses a token without sid, sub, jti or exp", async () => {
      for (const claim of ["sid", "sub", "jti", "exp"]) {
        await expectRefused(await resign(app, token, { claims: { [claim]: undefined } }));
      }
    });

    it("refuses an nbf in the future", async () => {
      const iat = decodeJwt(token).iat as number;
      await expectRefused(await resign(app, token, { claims: { nbf: iat + 3600 } }));
    });
  });

  describe("time", () => {
    it("accepts a token within the clock tolerance after exp", async () => {
      app.clock.advance(ACCESS_TTL_MS + TOLERANCE_MS - 1_000);
      expect((await me(token)).statusCode).toBe(200);
    });

    it("answers token_expired after exp + tolerance, even for a cached token", async () => {
      expect((await me(token)).statusCode).toBe(200); // now in the verified-token cache
      app.clock.advance(ACCESS_TTL_MS + TOLERANCE_MS + 1_000);
      await expectRefused(token, "token_expired");
    });

    it("refuses an expired token whose exp was pushed back without the key", async () => {
      const [header, , signature] = token.split(".");
      const claims = decodeJwt(token);
      const extended = { ...claims, exp: (claims.exp as number) + 86_400 };
      app.clock.advance(ACCESS_TTL_MS + TOLERANCE_MS + 1_000);
      await expectRefused(`${header}.${b64json(extended)}.${signature}`);
    });

    it("refuses other claims under a cached token's signature (the cache keys on its end)", async () => {
      expect((await me(token)).statusCode).toBe(200); // the genuine token is now cached
      const [header, , signature] = token.split(".");
      const promoted = { ...decodeJwt(token), role: "admin" };
      await expectRefused(`${header}.${b64json(promoted)}.${signature}`);
      expect((await me(token)).statusCode).toBe(200);
    });
  });

  describe("revocation", () => {
    it("refuses a revoked session's token even though it sits in the verified-token cache", async () => {
      expect((await me(token)).statusCode).toBe(200);
      expect(app.svc.verifiedTokens.get(token, app.clock.now(), 5)).toBeDefined();
      const out = await app.http.inject({
        method: "POST",
        url: "/auth/logout",
        headers: bearer(token),
      });
      expect(out.statusCode).toBe(204);
      await expectRefused(token, "session_revoked");
    });

    it("sees a revocation written by another node once the session cache entry ages out", async () => {
      expect((await me(token)).statusCode).toBe(200);
      const { sid } = decodeJwt(token) as { sid: string };
      // Straight to the database: no cache eviction, as when another node without Redis revokes.
      await app.svc.store.sessions.revoke(sid, "admin", app.clock.now());
      app.clock.advance(app.svc.config.sessionCacheMs);
      await expectRefused(token, "session_revoked");
    });
  });
});

describe("HS256 mode (shared secret)", () => {
  const secret = "x".repeat(40);
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ jwtSecret: secret });
  });
  afterAll(() => app.close());

  const me = (accessToken: string) =>
    app.http.inject({ url: "/users/me", headers: bearer(accessToken) });

  it("issues HS256 tokens that /users/me accepts", async () => {
    const { accessToken } = await registerUser(app);
    expect(decodeProtectedHeader(accessToken)).toMatchObject({ alg: "HS256", typ: "at+jwt" });
    expect((await me(accessToken)).statusCode).toBe(200);
  });

  it("publishes no keys", async () => {
    const res = await app.http.inject({ url: "/.well-known/jwks.json" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ keys: [] });
  });

  it("refuses an EdDSA-signed token, under the HS256 kid or its own", async () => {
    const { accessToken } = await registerUser(app);
    const { kid } = decodeProtectedHeader(accessToken);
    const claims = decodeJwt(accessToken);
    const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
    for (const header of [
      { alg: "EdDSA", kid, typ: "at+jwt" },
      { alg: "EdDSA", kid: "ed25519-key", typ: "at+jwt" },
    ]) {
      const forged = await new SignJWT(claims).setProtectedHeader(header).sign(privateKey);
      const res = await me(forged);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: "invalid_token" });
    }
  });

  it("refuses an HS256 token signed with another secret", async () => {
    const { accessToken } = await registerUser(app);
    const forged = await new SignJWT(decodeJwt(accessToken))
      .setProtectedHeader(decodeProtectedHeader(accessToken) as JWTHeaderParameters)
      .sign(new TextEncoder().encode("y".repeat(40)));
    const res = await me(forged);
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: "invalid_token" });
  });

  it("cannot rotate keys", async () => {
    await expect(app.svc.keys.rotate()).rejects.toThrow(/HS256/);
  });
});
