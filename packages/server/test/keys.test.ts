import { calculateJwkThumbprint, decodeProtectedHeader, type JWK } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { KEY_RELOAD_INTERVAL_MS } from "../src/flows/keys.js";
import { MFA_TOKEN_TTL_S } from "../src/flows/mfa-login.js";
import { purgeEnded } from "../src/flows/purge.js";
import {
  bearer,
  json,
  openAppDb,
  registerUser,
  startTestApp,
  TEST_DB,
  type TestApp,
} from "./helpers.js";
import { enrolledUser, finishMfa, passwordLogin, totpAt } from "./mfa-helpers.js";

const ACCESS_TTL_MS = 15 * 60_000;
const TOLERANCE_MS = 5_000;
/** How long a retired key stays published: the last token it signed, plus reload lag and tolerance. */
const PUBLISHED_AFTER_RETIREMENT_MS = ACCESS_TTL_MS + TOLERANCE_MS + KEY_RELOAD_INTERVAL_MS;
const MASTER_KEY = "correct-master-key-of-at-least-32-chars";

/** Another node on `app`'s database (or `app` restarted), its clock set to `app`'s. */
async function startNode(
  app: TestApp,
  overrides: Parameters<typeof startTestApp>[0] = {},
): Promise<TestApp> {
  const node = await startTestApp(overrides, { shareWith: app });
  node.clock.set(app.clock.now());
  return node;
}

const jwks = async (app: TestApp) =>
  (await app.http.inject({ url: "/.well-known/jwks.json" })).json<{ keys: JWK[] }>().keys;
const kidOf = (token: string) => decodeProtectedHeader(token).kid;
const me = (app: TestApp, token: string) =>
  app.http.inject({ url: "/users/me", headers: bearer(token) });

describe("signing keys", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  it("creates one Ed25519 key on first start and publishes only its public part", async () => {
    const res = await app.http.inject({ url: "/.well-known/jwks.json" });
    expect(res.statusCode).toBe(200);
    const { keys } = res.json<{ keys: JWK[] }>();
    expect(keys).toHaveLength(1);
    const [key] = keys as [JWK];
    expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(key).not.toHaveProperty("d");
    // RFC 7638 thumbprint over the required members only.
    expect(key.kid).toBe(await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: key.x }));
    const { accessToken } = await registerUser(app);
    expect(kidOf(accessToken)).toBe(key.kid);

    const db = await openAppDb(app);
    try {
      const rows = await db.kysely.selectFrom("signing_keys").selectAll().execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ kid: key.kid, alg: "EdDSA", retired_at: null });
    } finally {
      await db.close();
    }
  });

  it("keeps the same key across a restart", async () => {
    const [before] = await jwks(app);
    const node = await startNode(app);
    try {
      expect(await jwks(node)).toEqual([before]);
    } finally {
      await node.close();
    }
  });

  it("rotates: new tokens carry the new kid, tokens signed before still verify", async () => {
    const [oldKey] = (await jwks(app)) as [JWK];
    const before = await Promise.all(Array.from({ length: 5 }, () => registerUser(app)));

    const { kid, retired } = await app.svc.keys.rotate();
    expect(retired).toBe(1);
    expect(kid).not.toBe(oldKey.kid);
    const published = await jwks(app);
    expect(published.map((k) => k.kid)).toEqual([kid, oldKey.kid]);
    for (const k of published) expect(k).not.toHaveProperty("d");

    const after = await registerUser(app);
    expect(kidOf(after.accessToken)).toBe(kid);
    const refreshed = await app.http.inject({
      method: "POST",
      url: "/auth/refresh",
      ...json({ refreshToken: before[0]?.refreshToken }),
    });
    expect(kidOf(refreshed.json<{ accessToken: string }>().accessToken)).toBe(kid);

    // Zero failed verifications across the rotation.
    const statuses = await Promise.all(before.map((t) => me(app, t.accessToken)));
    expect(statuses.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200]);
    expect((await me(app, after.accessToken)).statusCode).toBe(200);
  });

  it("stops publishing a retired key once every token it signed has expired", async () => {
    const [oldKey] = (await jwks(app)) as [JWK];
    const { accessToken } = await registerUser(app);
    app.clock.advance(ACCESS_TTL_MS / 2);
    const { kid } = await app.svc.keys.rotate();

    // The last token signed with the old key may be up to ACCESS_TTL old; still published.
    app.clock.advance(PUBLISHED_AFTER_RETIREMENT_MS - 1_000);
    expect((await jwks(app)).map((k) => k.kid)).toEqual([kid, oldKey.kid]);

    // JWKS re-reads the keys at most every JWKS_FRESHNESS_MS (5 s).
    app.clock.advance(6_000);
    expect((await jwks(app)).map((k) => k.kid)).toEqual([kid]);
    // Long expired, and its key is gone: refused either way.
    expect((await me(app, accessToken)).statusCode).toBe(401);
  });

  it("the purge deletes a retired key's private half once it is no longer published, not before", async () => {
    const [oldKey] = (await jwks(app)) as [JWK];
    const { kid } = await app.svc.keys.rotate();
    const kids = async () => {
      const db = await openAppDb(app);
      try {
        const rows = await db.kysely.selectFrom("signing_keys").select("kid").execute();
        return rows.map((r) => r.kid).sort();
      } finally {
        await db.close();
      }
    };
    await purgeEnded(app.svc);
    expect(await kids()).toEqual([kid, oldKey.kid].sort());
    app.clock.advance(MFA_TOKEN_TTL_S * 1000 + PUBLISHED_AFTER_RETIREMENT_MS);
    expect((await jwks(app)).map((k) => k.kid)).toEqual([kid]);
    await purgeEnded(app.svc);
    expect(await kids()).toEqual([kid]);
  });

  it("keeps a retired key while an MFA token it signed lives, even with shorter access tokens", async () => {
    // Regression: retirement counted only the access-token lifetime, so with 60 s access
    // tokens the key behind a 10-minute MFA token was dropped after ~2 minutes and the
    // second factor failed with invalid_token.
    const shortAccess = await startTestApp({ tokens: { accessTtlSeconds: 60 } });
    try {
      const user = await enrolledUser(shortAccess);
      const login = await passwordLogin(shortAccess, user.email);
      const { mfaToken } = login.json<{ mfaToken: string }>();
      const { kid } = await shortAccess.svc.keys.rotate();

      shortAccess.clock.advance(MFA_TOKEN_TTL_S * 1000 - 30_000);
      expect((await jwks(shortAccess)).map((k) => k.kid)).toEqual([kid, kidOf(mfaToken)]);
      const res = await finishMfa(
        shortAccess,
        mfaToken,
        totpAt(user.secret, shortAccess.clock.now()),
      );
      expect(res.statusCode).toBe(200);
    } finally {
      await shortAccess.close();
    }
  });

  it("a second node on the same database rotates; the first accepts the new kid", async () => {
    const user = await registerUser(app, { email: "multi@example.com" });
    const node = await startNode(app);
    try {
      const [shared] = await jwks(node);
      expect(shared?.kid).toBe(kidOf(user.accessToken));
      // Tokens and refresh tokens are interchangeable between nodes.
      expect((await me(node, user.accessToken)).statusCode).toBe(200);

      const { kid } = await node.svc.keys.rotate();
      const login = await node.http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "multi@example.com", password: "correct horse battery" }),
      });
      const fresh = login.json<{ accessToken: string; refreshToken: string }>();
      expect(kidOf(fresh.accessToken)).toBe(kid);
      // Without Redis nothing tells the first node; it reloads when it meets the kid.
      // With Redis the rotation message may already have reached it.
      if (TEST_DB === "sqlite") expect(app.svc.keys.keyring.find(kid)).toBeUndefined();

      const res = await me(app, fresh.accessToken);
      expect(res.statusCode).toBe(200); // reloaded on the unknown kid
      expect(app.svc.keys.keyring.signing.kid).toBe(kid);
      expect((await jwks(app)).map((k) => k.kid)).toEqual([kid, shared?.kid]);
      expect((await me(app, user.accessToken)).statusCode).toBe(200);

      const refreshed = await app.http.inject({
        method: "POST",
        url: "/auth/refresh",
        ...json({ refreshToken: fresh.refreshToken }),
      });
      expect(refreshed.statusCode).toBe(200);
      expect(kidOf(refreshed.json<{ accessToken: string }>().accessToken)).toBe(kid);
    } finally {
      await node.close();
    }
  });

  it("signs with a key rotated elsewhere at its next check, before meeting the kid", async () => {
    const node = await startNode(app);
    try {
      const { kid } = await node.svc.keys.rotate();
      // Without Redis (the CLI on a single node) nothing tells this node; its timer asks.
      app.svc.keys.check();
      await expect.poll(() => app.svc.keys.keyring.signing.kid).toBe(kid);
      const user = await registerUser(app);
      expect(kidOf(user.accessToken)).toBe(kid);
      expect((await jwks(app)).map((k) => k.kid)[0]).toBe(kid);
    } finally {
      await node.close();
    }
  });

  it("serves discovery metadata naming the issuer and the JWKS", async () => {
    const res = await app.http.inject({ url: "/.well-known/openid-configuration" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      issuer: "http://latchkey.test",
      jwks_uri: "http://latchkey.test/.well-known/jwks.json",
      id_token_signing_alg_values_supported: ["EdDSA"],
    });
    const { accessToken } = await registerUser(app);
    expect(
      JSON.parse(Buffer.from(accessToken.split(".")[1] ?? "", "base64url").toString()),
    ).toMatchObject({
      iss: res.json<{ issuer: string }>().issuer,
    });
  });
});

describe("master key", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp({ masterKey: MASTER_KEY });
  });
  afterEach(() => app.close());

  it("stores private keys and server secrets sealed", async () => {
    const db = await openAppDb(app);
    try {
      const keys = await db.kysely.selectFrom("signing_keys").selectAll().execute();
      expect(keys).toHaveLength(1);
      for (const k of keys) {
        expect(k.private_jwk.startsWith("enc:v1:")).toBe(true);
        expect(k.private_jwk).not.toContain('"d"');
        expect(JSON.parse(k.public_jwk)).not.toHaveProperty("d");
      }
      const secrets = await db.kysely.selectFrom("server_secrets").selectAll().execute();
      expect(secrets.length).toBeGreaterThan(0);
      for (const s of secrets) expect(s.value.startsWith("enc:v1:")).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("seals keys created by rotation too", async () => {
    await app.svc.keys.rotate();
    const db = await openAppDb(app);
    try {
      const keys = await db.kysely.selectFrom("signing_keys").select("private_jwk").execute();
      expect(keys).toHaveLength(2);
      for (const k of keys) expect(k.private_jwk.startsWith("enc:v1:")).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("restarts with the same master key: same keys, tokens and refresh tokens still good", async () => {
    const user = await registerUser(app);
    const restarted = await startNode(app, { masterKey: MASTER_KEY });
    try {
      expect(await jwks(restarted)).toEqual(await jwks(app));
      expect((await me(restarted, user.accessToken)).statusCode).toBe(200);
      const res = await restarted.http.inject({
        method: "POST",
        url: "/auth/refresh",
        ...json({ refreshToken: user.refreshToken }),
      });
      expect(res.statusCode).toBe(200);
    } finally {
      await restarted.close();
    }
  });

  it("refuses to start with a different master key, or none", async () => {
    await expect(
      startNode(app, { masterKey: "a-different-master-key-of-32-chars!!" }),
    ).rejects.toThrow(/LATCHKEY_MASTER_KEY is wrong/);
    await expect(startNode(app)).rejects.toThrow(/LATCHKEY_MASTER_KEY is not set/);
    // The failed starts changed nothing: the right key still opens everything.
    const restarted = await startNode(app, { masterKey: MASTER_KEY });
    await restarted.close();
  });
});

describe("master key set after the first start", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  it("seals what was stored in clear before, and everything still works", async () => {
    const enrolled = await enrolledUser(app);
    const pending = await registerUser(app);
    const setup = await app.http.inject({
      method: "POST",
      url: "/mfa/totp/setup",
      headers: bearer(pending.accessToken),
    });
    expect(setup.statusCode).toBe(200);
    const published = await jwks(app);

    // The deployment restarts with a master key (the old node, without it, is not asked again).
    const restarted = await startNode(app, { masterKey: MASTER_KEY });
    try {
      const db = await openAppDb(app);
      try {
        const keys = await db.kysely.selectFrom("signing_keys").select("private_jwk").execute();
        for (const k of keys) expect(k.private_jwk).toMatch(/^enc:v1:/);
        const secrets = await db.kysely.selectFrom("server_secrets").select("value").execute();
        expect(secrets.length).toBeGreaterThan(0);
        for (const s of secrets) expect(s.value).toMatch(/^enc:v1:/);
        const users = await db.kysely
          .selectFrom("users")
          .select("totp_secret")
          .where("totp_secret", "is not", null)
          .execute();
        expect(users).toHaveLength(2);
        for (const u of users) expect(u.totp_secret).toMatch(/^enc:v1:/);
      } finally {
        await db.close();
      }
      // The same keys, opened from their sealed form: tokens, refresh tokens and codes hold.
      expect(await jwks(restarted)).toEqual(published);
      expect((await me(restarted, enrolled.accessToken)).statusCode).toBe(200);
      const refreshed = await restarted.http.inject({
        method: "POST",
        url: "/auth/refresh",
        ...json({ refreshToken: enrolled.refreshToken }),
      });
      expect(refreshed.statusCode).toBe(200);
      const first = await passwordLogin(restarted, enrolled.email);
      const mfa = await finishMfa(
        restarted,
        first.json<{ mfaToken: string }>().mfaToken,
        totpAt(enrolled.secret, restarted.clock.now()),
      );
      expect(mfa.statusCode).toBe(200);
    } finally {
      await restarted.close();
    }
  });
});
