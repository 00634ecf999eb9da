import { generateKeyPairSync } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { ec2Key, jwkOf, okpKey, rsaKey } from "./cose-keys.js";
import {
  bearer,
  json,
  openAppDb,
  postJson,
  registerUser,
  startTestApp,
  type TestApp,
} from "./helpers.js";
import { enrolledUser, finishMfa, ORIGIN, PASSWORD, passwordLogin, totpAt } from "./mfa-helpers.js";
import { SoftAuthenticator, type Tamper } from "./webauthn-authenticator.js";

const RP_ID = "latchkey.test";
const FIVE_MINUTES = 5 * 60_000;

interface Ceremony<T> {
  options: T;
  challengeId: string;
}
type CreationOptions = Parameters<SoftAuthenticator["register"]>[0] & Record<string, unknown>;
type RequestOptions = Parameters<SoftAuthenticator["assert"]>[0] & Record<string, unknown>;

describe("passkeys (WebAuthn)", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    postJson(app, url, body, headers);

  const registrationOptions = async (accessToken: string) => {
    const res = await post("/webauthn/register/options", {}, bearer(accessToken));
    expect(res.statusCode).toBe(200);
    return res.json<Ceremony<CreationOptions>>();
  };

  /** A user with one passkey on `authenticator`; returns the user's tokens and the credential id. */
  async function withPasskey(authenticator = new SoftAuthenticator({ origin: ORIGIN })) {
    const user = await registerUser(app, { password: PASSWORD });
    const { options, challengeId } = await registrationOptions(user.accessToken);
    const res = await post(
      "/webauthn/register/verify",
      { challengeId, response: authenticator.register(options), name: "Laptop" },
      bearer(user.accessToken),
    );
    expect(res.statusCode).toBe(201);
    const { credential } = res.json<{ credential: { id: string } }>();
    return { ...user, authenticator, credentialId: credential.id };
  }

  const loginOptions = async (body: unknown = {}) => {
    const res = await post("/auth/webauthn/options", body);
    expect(res.statusCode).toBe(200);
    return res.json<Ceremony<RequestOptions>>();
  };

  const passkeyLogin = async (authenticator: SoftAuthenticator, tamper: Tamper = {}, body = {}) => {
    const { options, challengeId } = await loginOptions(body);
    return post("/auth/webauthn/verify", {
      challengeId,
      response: authenticator.assert(options, tamper),
    });
  };

  const expectRefused = (res: { statusCode: number; json(): unknown }) => {
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "webauthn_failed", status: 400 });
  };

  describe("registration", () => {
    it("offers creation options and stores the verified credential", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const { options, challengeId } = await registrationOptions(user.accessToken);
      expect(challengeId).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(options).toMatchObject({
        rp: { id: RP_ID, name: "Latchkey" },
        user: { id: Buffer.from(user.user.id).toString("base64url") },
        attestation: "none",
        timeout: FIVE_MINUTES,
        authenticatorSelection: { residentKey: "preferred", userVerification: "preferred" },
        excludeCredentials: [],
      });
      expect(Buffer.from(options.challenge, "base64url")).toHaveLength(32);

      const authenticator = new SoftAuthenticator({ origin: ORIGIN, backedUp: true });
      const res = await post(
        "/webauthn/register/verify",
        { challengeId, response: authenticator.register(options), name: "  Phone " },
        bearer(user.accessToken),
      );
      expect(res.statusCode).toBe(201);
      const { credential } = res.json();
      expect(credential).toEqual({
        id: authenticator.assert({ challenge: "x", rpId: RP_ID }).id,
        name: "Phone",
        createdAt: new Date(app.clock.now()).toISOString(),
        lastUsedAt: null,
        backedUp: true,
        deviceType: "multiDevice",
      });

      const list = await app.http.inject({
        method: "GET",
        url: "/webauthn/credentials",
        headers: bearer(user.accessToken),
      });
      expect(list.json()).toEqual({ credentials: [credential] });
      // The next ceremony excludes it, so the same authenticator is not registered twice.
      const again = await registrationOptions(user.accessToken);
      expect(again.options.excludeCredentials).toEqual([
        { id: credential.id, type: "public-key", transports: ["internal", "hybrid"] },
      ]);
      expect(() => authenticator.register(again.options)).toThrow(/excluded/);
    });

    it("names a passkey by date when no name is given, and renames it", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const { options, challengeId } = await registrationOptions(user.accessToken);
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      const res = await post(
        "/webauthn/register/verify",
        { challengeId, response: authenticator.register(options) },
        bearer(user.accessToken),
      );
      const { credential } = res.json();
      expect(credential).toMatchObject({ name: "Passkey 2026-01-01", backedUp: false });
      const rename = await app.http.inject({
        method: "PATCH",
        url: `/webauthn/credentials/${credential.id}`,
        ...json({ name: "YubiKey" }),
        headers: { ...bearer(user.accessToken), "content-type": "application/json" },
      });
      expect(rename.statusCode).toBe(200);
      expect(rename.json().credential).toMatchObject({ id: credential.id, name: "YubiKey" });
      // Someone else's passkey does not exist for this user.
      const other = await registerUser(app, { password: PASSWORD });
      const foreign = await app.http.inject({
        method: "PATCH",
        url: `/webauthn/credentials/${credential.id}`,
        payload: JSON.stringify({ name: "Mine" }),
        headers: { ...bearer(other.accessToken), "content-type": "application/json" },
      });
      expect(foreign.statusCode).toBe(404);
    });

    it("renames and deletes a passkey whose credential ID is longer than 100 characters", async () => {
      // Fastify's router refused path parameters over 100 characters (414) before the
      // route's schema, which allows a credential ID's full 1364.
      for (const credentialIdBytes of [255, 1023]) {
        const { accessToken, credentialId } = await withPasskey(
          new SoftAuthenticator({ origin: ORIGIN, credentialIdBytes }),
        );
        expect(credentialId.length).toBeGreaterThan(100);
        const url = `/webauthn/credentials/${credentialId}`;
        const rename = await app.http.inject({
          method: "PATCH",
          url,
          ...json({ name: "Security key" }),
          headers: { ...bearer(accessToken), "content-type": "application/json" },
        });
        expect(rename.statusCode).toBe(200);
        expect(rename.json().credential).toMatchObject({ id: credentialId, name: "Security key" });
        const { stepUpToken } = (
          await post("/auth/step-up", { password: PASSWORD }, bearer(accessToken))
        ).json();
        const del = await app.http.inject({
          method: "DELETE",
          url,
          headers: { ...bearer(accessToken), "x-step-up-token": stepUpToken },
        });
        expect(del.statusCode).toBe(204);
      }
    });

    it("refuses a wrong origin, a wrong RP ID, the wrong ceremony type and a replay", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      for (const tamper of [
        { origin: "https://latchkey.test.evil.example" },
        { rpId: "evil.example" },
        { type: "webauthn.get" },
      ]) {
        const { options, challengeId } = await registrationOptions(user.accessToken);
        const res = await post(
          "/webauthn/register/verify",
          { challengeId, response: authenticator.register(options, tamper) },
          bearer(user.accessToken),
        );
        expectRefused(res);
      }
      const { options, challengeId } = await registrationOptions(user.accessToken);
      const body = { challengeId, response: authenticator.register(options) };
      expect(
        (await post("/webauthn/register/verify", body, bearer(user.accessToken))).statusCode,
      ).toBe(201);
      const replay = await post("/webauthn/register/verify", body, bearer(user.accessToken));
      expectRefused(replay);
      expect(replay.json().detail).toMatch(/already used/);
    });

    it("refuses a ceremony run in a cross-origin frame", async () => {
      // Regression: registration took clientDataJSON with crossOrigin and a foreign
      // topOrigin, which sign-in refused; and both took crossOrigin without topOrigin
      // (Safari sends no topOrigin). No top origin is configured, so no frame is expected.
      const user = await registerUser(app, { password: PASSWORD });
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      for (const tamper of [
        { crossOrigin: true, topOrigin: "https://evil.example" },
        { crossOrigin: true },
      ]) {
        const { options, challengeId } = await registrationOptions(user.accessToken);
        const framed = new SoftAuthenticator({ origin: ORIGIN }).register(options, tamper);
        const res = await post(
          "/webauthn/register/verify",
          { challengeId, response: framed },
          bearer(user.accessToken),
        );
        expectRefused(res);
        expect(res.json().detail).toMatch(/cross-origin frame/);
      }
      const { options, challengeId } = await registrationOptions(user.accessToken);
      const res = await post(
        "/webauthn/register/verify",
        { challengeId, response: authenticator.register(options) },
        bearer(user.accessToken),
      );
      expect(res.statusCode).toBe(201);
      const framed = await passkeyLogin(authenticator, { crossOrigin: true });
      expectRefused(framed);
      expect(framed.json().detail).toMatch(/cross-origin frame/);
      expect((await passkeyLogin(authenticator)).statusCode).toBe(200);
    });

    it("answers bytes the parser cannot decode as malformed, naming no library internals", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      for (const attestationObject of [
        "AAAA",
        Buffer.from("not cbor at all").toString("base64url"),
      ]) {
        const { options, challengeId } = await registrationOptions(user.accessToken);
        const response = authenticator.register(options);
        const res = await post(
          "/webauthn/register/verify",
          {
            challengeId,
            response: { ...response, response: { ...response.response, attestationObject } },
          },
          bearer(user.accessToken),
        );
        expectRefused(res);
        expect(res.json().detail).toBe(
          "The passkey response was refused: The response is malformed",
        );
      }
    });

    /** Registers with `tamper` on a fresh authenticator: the verify call's answer. */
    const registerWith = async (accessToken: string, tamper: Tamper) => {
      const { options, challengeId } = await registrationOptions(accessToken);
      const response = new SoftAuthenticator({ origin: ORIGIN }).register(options, tamper);
      return post("/webauthn/register/verify", { challengeId, response }, bearer(accessToken));
    };
    const passkeysOf = async (accessToken: string) =>
      (
        await app.http.inject({
          method: "GET",
          url: "/webauthn/credentials",
          headers: bearer(accessToken),
        })
      ).json<{ credentials: unknown[] }>().credentials;
    it("refuses a credential whose public key cannot verify, and stores nothing", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const broken: Record<string, Tamper["coseKey"]> = {
        "a P-256 point off the curve": (own) => {
          const y = Buffer.from(own.get(-3) as Uint8Array);
          y[31] = (y[31] ?? 0) ^ 1;
          return new Map(own).set(-3, y);
        },
        "3-byte coordinates": (own) =>
          new Map(own)
            .set(-2, (own.get(-2) as Uint8Array).subarray(29))
            .set(-3, (own.get(-3) as Uint8Array).subarray(29)),
        "an Ed25519 key of 31 bytes": () => okpKey(Buffer.alloc(31, 7)),
        "an RSA key with a garbage modulus": () =>
          rsaKey(Buffer.from("garbage"), Buffer.from([1, 0, 1])),
      };
      for (const [what, tamper] of Object.entries(broken)) {
        const res = await registerWith(user.accessToken, { coseKey: tamper });
        expectRefused(res);
        expect(res.json().detail, what).toBe(
          "The passkey response was refused: The credential's public key is invalid",
        );
      }
      expect(await passkeysOf(user.accessToken)).toEqual([]);
      // The same ceremony with the authenticator's own key goes through.
      expect((await registerWith(user.accessToken, {})).statusCode).toBe(201);
      expect(await passkeysOf(user.accessToken)).toHaveLength(1);
    });

    it("offers EdDSA, ES256 and RS256, and accepts keys of those only", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const { options } = await registrationOptions(user.accessToken);
      expect(options.pubKeyCredParams).toEqual([
        { alg: -8, type: "public-key" },
        { alg: -7, type: "public-key" },
        { alg: -257, type: "public-key" },
      ]);
      const ed25519 = jwkOf(generateKeyPairSync("ed25519").publicKey);
      const rsa = jwkOf(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey);
      for (const key of [okpKey(ed25519("x")), rsaKey(rsa("n"), rsa("e"))]) {
        expect((await registerWith(user.accessToken, { coseKey: () => key })).statusCode).toBe(201);
      }
      const p384 = jwkOf(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey);
      const es384 = await registerWith(user.accessToken, {
        coseKey: () => ec2Key(p384("x"), p384("y"), { alg: -35, crv: 2 }),
      });
      expectRefused(es384);
      expect(es384.json().detail).toMatch(/Unexpected public key alg "-35"/);
      // ES256 means P-256: the same P-384 key labelled ES256 is refused too.
      const mislabelled = await registerWith(user.accessToken, {
        coseKey: () => ec2Key(p384("x"), p384("y"), { crv: 2 }),
      });
      expectRefused(mislabelled);
      expect(mislabelled.json().detail).toMatch(/public key is invalid/);
      expect(await passkeysOf(user.accessToken)).toHaveLength(2);
    });

    it("stores only the credential ID the client reports, of 1 to 1023 bytes", async () => {
      // Regression: the ID attested in authData was stored whatever the response's
      // id/rawId said, so an empty or 1100-byte one was kept: listed, counted against
      // the cap and as a way to sign in, yet no route could name it to rename or delete.
      const user = await registerUser(app, { password: PASSWORD });
      const claimed = Buffer.alloc(16, 7).toString("base64url");
      for (const credentialIdBytes of [0, 1100, 16]) {
        const { options, challengeId } = await registrationOptions(user.accessToken);
        const authenticator = new SoftAuthenticator({ origin: ORIGIN, credentialIdBytes });
        const response = { ...authenticator.register(options), id: claimed, rawId: claimed };
        const res = await post(
          "/webauthn/register/verify",
          { challengeId, response },
          bearer(user.accessToken),
        );
        expectRefused(res);
        expect(res.json().detail).toMatch(/credential ID/);
      }
      // §7.1: over 1023 bytes is refused even when the response names it honestly.
      const { options, challengeId } = await registrationOptions(user.accessToken);
      const long = new SoftAuthenticator({ origin: ORIGIN, credentialIdBytes: 1024 });
      const res = await post(
        "/webauthn/register/verify",
        { challengeId, response: long.register(options) },
        bearer(user.accessToken),
      );
      expect(res.statusCode).toBe(400);
      expect(await passkeysOf(user.accessToken)).toEqual([]);
    });

    it("binds the challenge to the session that asked for it", async () => {
      const user = await registerUser(app, { password: PASSWORD });
      const { options, challengeId } = await registrationOptions(user.accessToken);
      const otherSession = await passwordLogin(app, (await me(user.accessToken)).email);
      const response = new SoftAuthenticator({ origin: ORIGIN }).register(options);
      const res = await post(
        "/webauthn/register/verify",
        { challengeId, response },
        bearer(otherSession.json().accessToken),
      );
      expectRefused(res);
      // The refusal did not use it up: the session it belongs to still can.
      const ok = await post(
        "/webauthn/register/verify",
        { challengeId, response },
        bearer(user.accessToken),
      );
      expect(ok.statusCode).toBe(201);
    });

    it("refuses guests", async () => {
      const guest = await post("/auth/guest", { username: "visitor" });
      const res = await post("/webauthn/register/options", {}, bearer(guest.json().accessToken));
      expect(res.statusCode).toBe(403);
    });

    describe("at most 20 passkeys", () => {
      const CAP = 20;
      const AT_CAP = {
        status: 409,
        code: "conflict",
        detail: `At most ${CAP} passkeys per account`,
      };

      /** A user holding one passkey fewer than the cap, and `n` ceremonies started now. */
      const oneBelowCap = async (n: number) => {
        const user = await registerUser(app, { password: PASSWORD });
        for (let i = 0; i < CAP - 1; i++) {
          expect((await registerWith(user.accessToken, {})).statusCode).toBe(201);
        }
        const ceremonies = [];
        for (let i = 0; i < n; i++) ceremonies.push(await registrationOptions(user.accessToken));
        const verify = ({ options, challengeId }: Ceremony<CreationOptions>) =>
          post(
            "/webauthn/register/verify",
            { challengeId, response: new SoftAuthenticator({ origin: ORIGIN }).register(options) },
            bearer(user.accessToken),
          );
        return { user, ceremonies, verify };
      };

      it("is checked again at verify: ceremonies started below the cap cannot pass it", async () => {
        const { user, ceremonies, verify } = await oneBelowCap(3);
        const statuses = [];
        for (const ceremony of ceremonies) {
          const res = await verify(ceremony);
          statuses.push(res.statusCode);
          if (res.statusCode === 409) expect(res.json()).toMatchObject(AT_CAP);
        }
        expect(statuses).toEqual([201, 409, 409]);
        expect(await passkeysOf(user.accessToken)).toHaveLength(CAP);
        const options = await post("/webauthn/register/options", {}, bearer(user.accessToken));
        expect(options.json()).toMatchObject(AT_CAP);
      });

      it("holds when the verifies race: exactly one gets the last place", async () => {
        const { user, ceremonies, verify } = await oneBelowCap(6);
        const answers = await Promise.all(ceremonies.map(verify));
        const statuses = answers.map((r) => r.statusCode).sort();
        expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
        for (const res of answers.filter((r) => r.statusCode === 409)) {
          expect(res.json()).toMatchObject(AT_CAP);
        }
        expect(await passkeysOf(user.accessToken)).toHaveLength(CAP);
      });
    });
  });

  const me = async (accessToken: string) =>
    (
      await app.http.inject({ method: "GET", url: "/users/me", headers: bearer(accessToken) })
    ).json<{
      email: string;
      mfaEnabled: boolean;
    }>();

  describe("passwordless sign-in", () => {
    it("signs in with a discoverable passkey; UV gives amr hwk+user", async () => {
      const { user, authenticator, credentialId } = await withPasskey();
      const { options } = await loginOptions();
      expect(options).toMatchObject({
        rpId: RP_ID,
        userVerification: "preferred",
        timeout: FIVE_MINUTES,
      });
      expect(options.allowCredentials ?? []).toEqual([]);
      app.clock.advance(1000);
      const res = await passkeyLogin(authenticator);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.user.id).toBe(user.id);
      expect(body.refreshToken).toBeTruthy();
      expect(decodeJwt(body.accessToken)).toMatchObject({ sub: user.id, amr: ["hwk", "user"] });
      expect(res.cookies.find((c) => c.name === "lk_refresh")).toBeTruthy();
      // The refresh token works like any other.
      const refreshed = await post("/auth/refresh", { refreshToken: body.refreshToken });
      expect(refreshed.statusCode).toBe(200);
      const list = await app.http.inject({
        method: "GET",
        url: "/webauthn/credentials",
        headers: bearer(body.accessToken),
      });
      expect(list.json().credentials[0]).toMatchObject({
        id: credentialId,
        lastUsedAt: new Date(app.clock.now()).toISOString(),
      });
    });

    it("signs in by identifier: the account's passkeys are allowed; strangers get a stand-in", async () => {
      const { authenticator, credentialId, accessToken } = await withPasskey();
      const { email } = await me(accessToken);
      const { options } = await loginOptions({ identifier: email.toUpperCase() });
      expect(options.allowCredentials).toEqual([
        { id: credentialId, type: "public-key", transports: ["internal", "hybrid"] },
      ]);
      const res = await post("/auth/webauthn/verify", {
        challengeId: (await loginOptions({ identifier: email })).challengeId,
        response: authenticator.assert(options),
      });
      // The assertion answers the first challenge, not the second: refused.
      expectRefused(res);
      const ok = await passkeyLogin(authenticator, {}, { identifier: email });
      expect(ok.statusCode).toBe(200);

      const stranger = await loginOptions({ identifier: "nobody@example.com" });
      const strangerAgain = await loginOptions({ identifier: "nobody@example.com" });
      expect(stranger.options.allowCredentials).toHaveLength(1);
      expect(stranger.options.allowCredentials).toEqual(strangerAgain.options.allowCredentials);
      expect(
        (await loginOptions({ identifier: "someone@example.com" })).options.allowCredentials,
      ).not.toEqual(stranger.options.allowCredentials);
    });

    it("refuses another account's passkey on a challenge issued for an identifier", async () => {
      const alice = await withPasskey();
      const bob = await withPasskey();
      const { email } = await me(alice.accessToken);
      const { options, challengeId } = await loginOptions({ identifier: email });
      const res = await post("/auth/webauthn/verify", {
        challengeId,
        response: bob.authenticator.assert({ ...options, allowCredentials: [] }),
      });
      expectRefused(res);
    });

    it("takes no passkey on a challenge for an identifier no account has", async () => {
      // Regression: such a challenge took any passkey, so answering it with one's own told
      // an unknown identifier (signed in) from an account without passkeys (refused),
      // though both get the same stand-in options.
      const mallory = await withPasskey();
      const passkeyless = await registerUser(app, { password: PASSWORD });
      const { email } = await me(passkeyless.accessToken);
      const answers = [];
      for (const identifier of [email, "nobody@example.com"]) {
        const { options, challengeId } = await loginOptions({ identifier });
        const res = await post("/auth/webauthn/verify", {
          challengeId,
          response: mallory.authenticator.assert({ ...options, allowCredentials: [] }),
        });
        expectRefused(res);
        answers.push(res.json());
      }
      expect(answers[1]).toEqual(answers[0]);
      // Without an identifier the same passkey signs its owner in.
      expect((await passkeyLogin(mallory.authenticator)).statusCode).toBe(200);
    });

    it("without UV: amr hwk, and an MFA account is sent on to its second factor", async () => {
      const authenticator = new SoftAuthenticator({ origin: ORIGIN, userVerification: false });
      await withPasskey(authenticator);
      const res = await passkeyLogin(authenticator);
      expect(res.statusCode).toBe(200);
      expect(decodeJwt(res.json().accessToken).amr).toEqual(["hwk"]);

      const enrolled = await enrolledUser(app);
      const { options, challengeId } = await registrationOptions(enrolled.accessToken);
      const verify = await post(
        "/webauthn/register/verify",
        { challengeId, response: authenticator.register(options) },
        bearer(enrolled.accessToken),
      );
      expect(verify.statusCode).toBe(201);
      const discoverable = await loginOptions({ identifier: enrolled.email });
      const pending = await post("/auth/webauthn/verify", {
        challengeId: discoverable.challengeId,
        response: authenticator.assert(discoverable.options),
      });
      expect(pending.statusCode).toBe(200);
      expect(pending.json()).toMatchObject({ mfaRequired: true, expiresIn: 600 });
      const mfaToken = pending.json().mfaToken;
      // The same possession twice is not two factors: a non-UV passkey cannot finish it.
      const mfaOptions = await post(
        "/auth/login/mfa/webauthn/options",
        {},
        { "x-mfa-token": mfaToken },
      );
      // Regression: the options said UV was only preferred, so a browser could skip the
      // PIN the server then demands; they must ask for it.
      expect(mfaOptions.json().options.userVerification).toBe("required");
      const again = await post(
        "/auth/login/mfa",
        {
          webauthn: {
            challengeId: mfaOptions.json().challengeId,
            response: authenticator.assert(mfaOptions.json().options),
          },
        },
        { "x-mfa-token": mfaToken },
      );
      expectRefused(again);
      const done = await finishMfa(app, mfaToken, totpAt(enrolled.secret, app.clock.now()));
      expect(done.statusCode).toBe(200);
      expect(decodeJwt(done.json().accessToken).amr).toEqual(["hwk", "otp"]);
    });

    it("with UV satisfies MFA: no second step for an MFA account", async () => {
      const enrolled = await enrolledUser(app);
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      const { options, challengeId } = await registrationOptions(enrolled.accessToken);
      await post(
        "/webauthn/register/verify",
        { challengeId, response: authenticator.register(options) },
        bearer(enrolled.accessToken),
      );
      const res = await passkeyLogin(authenticator);
      expect(res.statusCode).toBe(200);
      expect(res.json().mfaRequired).toBeUndefined();
      expect(decodeJwt(res.json().accessToken).amr).toEqual(["hwk", "user"]);
    });

    it("refuses a wrong origin and a wrong RP ID", async () => {
      const { authenticator } = await withPasskey();
      expectRefused(await passkeyLogin(authenticator, { origin: "https://phish.example" }));
      expectRefused(await passkeyLogin(authenticator, { rpId: "phish.example" }));
      expectRefused(await passkeyLogin(authenticator, { type: "webauthn.create" }));
      expect((await passkeyLogin(authenticator)).statusCode).toBe(200);
    });

    it("refuses a signature counter that does not grow", async () => {
      const { authenticator } = await withPasskey();
      expect((await passkeyLogin(authenticator)).statusCode).toBe(200); // counter 2
      const cloned = await passkeyLogin(authenticator, { counter: 2 });
      expectRefused(cloned);
      expect(cloned.json().detail).toMatch(/counter/);
      expectRefused(await passkeyLogin(authenticator, { counter: 1 }));
      expect((await passkeyLogin(authenticator, { counter: 7 })).statusCode).toBe(200);
    });

    it("accepts authenticators without a counter (always zero)", async () => {
      const authenticator = new SoftAuthenticator({
        origin: ORIGIN,
        counterStep: 0,
        backedUp: true,
      });
      await withPasskey(authenticator);
      expect((await passkeyLogin(authenticator)).statusCode).toBe(200);
      expect((await passkeyLogin(authenticator)).statusCode).toBe(200);
    });

    it("uses a challenge once, even when the same answer races itself", async () => {
      const { authenticator } = await withPasskey();
      const { options, challengeId } = await loginOptions();
      const body = { challengeId, response: authenticator.assert(options) };
      const results = await Promise.all(
        [1, 2, 3, 4].map(() => post("/auth/webauthn/verify", body)),
      );
      expect(results.map((r) => r.statusCode).sort()).toEqual([200, 400, 400, 400]);
      expectRefused(await post("/auth/webauthn/verify", body));
    });

    it("refuses an expired challenge (5 minutes)", async () => {
      const { authenticator } = await withPasskey();
      const { options, challengeId } = await loginOptions();
      app.clock.advance(FIVE_MINUTES);
      const res = await post("/auth/webauthn/verify", {
        challengeId,
        response: authenticator.assert(options),
      });
      expectRefused(res);
      expect(res.json().detail).toMatch(/expired/);
      const fresh = await loginOptions();
      app.clock.advance(FIVE_MINUTES - 1000);
      const ok = await post("/auth/webauthn/verify", {
        challengeId: fresh.challengeId,
        response: authenticator.assert(fresh.options),
      });
      expect(ok.statusCode).toBe(200);
    });

    it("refuses an unknown passkey and a bad signature", async () => {
      const { authenticator } = await withPasskey();
      const stranger = new SoftAuthenticator({ origin: ORIGIN });
      stranger.register({
        challenge: "x",
        rp: { id: RP_ID, name: "x" },
        user: { id: "eA", name: "x" },
      });
      expectRefused(await passkeyLogin(stranger));
      const { options, challengeId } = await loginOptions();
      const response = authenticator.assert(options);
      const sig = Buffer.from(response.response.signature, "base64url");
      sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 1;
      const forged = {
        ...response,
        response: { ...response.response, signature: sig.toString("base64url") },
      };
      expectRefused(await post("/auth/webauthn/verify", { challengeId, response: forged }));
      // §7.2 step 6: the user handle, when given, must be the credential owner's.
      const next = await loginOptions();
      const other = authenticator.assert(next.options);
      const foreignHandle = {
        ...other.response,
        userHandle: Buffer.from("someone-else").toString("base64url"),
      };
      expectRefused(
        await post("/auth/webauthn/verify", {
          challengeId: next.challengeId,
          response: { ...other, response: foreignHandle },
        }),
      );
      // A null user handle (some toJSON() implementations) means none was returned.
      const last = await loginOptions();
      const plain = authenticator.assert(last.options);
      const res = await post("/auth/webauthn/verify", {
        challengeId: last.challengeId,
        response: {
          ...plain,
          authenticatorAttachment: null,
          response: { ...plain.response, userHandle: null },
        },
      });
      expect(res.statusCode).toBe(200);
    });

    it("applies the account checks and the login limits of password sign-in", async () => {
      const { authenticator, accessToken, user } = await withPasskey();
      const patch = await app.http.inject({
        method: "PATCH",
        url: "/users/me",
        payload: JSON.stringify({ allowedIps: ["127.0.0.1"] }),
        headers: { ...bearer(accessToken), "content-type": "application/json" },
      });
      expect(patch.statusCode).toBe(200);
      const { options, challengeId } = await loginOptions();
      const outside = await app.http.inject({
        method: "POST",
        url: "/auth/webauthn/verify",
        ...json({ challengeId, response: authenticator.assert(options) }),
        remoteAddress: "192.168.1.1",
      });
      expect(outside.statusCode).toBe(403);
      expect(outside.json().code).toBe("ip_not_allowed");

      const db = await openAppDb(app);
      try {
        await db.kysely
          .updateTable("users")
          .set({ disabled: 1 })
          .where("id", "=", user.id)
          .execute();
      } finally {
        await db.close();
      }
      const disabled = await passkeyLogin(authenticator);
      expect(disabled.statusCode).toBe(403);
      expect(disabled.json().code).toBe("account_disabled");

      // Five failures per account in the window (the default), then even a good answer waits.
      const { authenticator: other } = await withPasskey();
      for (let i = 0; i < 5; i++) {
        expectRefused(await passkeyLogin(other, { origin: "https://phish.example" }));
      }
      const blocked = await passkeyLogin(other);
      expect(blocked.statusCode).toBe(429);
      expect(blocked.json().code).toBe("rate_limited");
      expect(blocked.headers["retry-after"]).toBeDefined();
    });
    // Regression: strangers' wrong passwords locked the owner's passkey out with the password.
    it("a stranger's failures do not shut the owner's passkey out where they signed in before", async () => {
      const { authenticator, user } = await withPasskey(); // signed up from 127.0.0.1
      for (let i = 0; i < 5; i++) {
        const res = await app.http.inject({
          method: "POST",
          url: "/auth/login",
          remoteAddress: "192.0.2.66",
          ...json({ identifier: user.email, password: `guess number ${i}` }),
        });
        expect(res.statusCode).toBe(401);
      }
      const { options, challengeId } = await loginOptions();
      const stranger = await app.http.inject({
        method: "POST",
        url: "/auth/webauthn/verify",
        remoteAddress: "192.0.2.67",
        ...json({ challengeId, response: authenticator.assert(options) }),
      });
      expect(stranger.statusCode).toBe(429);
      expect((await passkeyLogin(authenticator)).statusCode).toBe(200);
    });
  });

  describe("second factor", () => {
    it("finishes a password sign-in with a passkey instead of a TOTP code", async () => {
      const enrolled = await enrolledUser(app);
      const authenticator = new SoftAuthenticator({ origin: ORIGIN, userVerification: false });
      const reg = await registrationOptions(enrolled.accessToken);
      await post(
        "/webauthn/register/verify",
        { challengeId: reg.challengeId, response: authenticator.register(reg.options) },
        bearer(enrolled.accessToken),
      );

      const login = await passwordLogin(app, enrolled.email);
      const { mfaToken } = login.json();
      const other = (await passwordLogin(app, enrolled.email)).json().mfaToken;
      const optionsRes = await post(
        "/auth/login/mfa/webauthn/options",
        {},
        { "x-mfa-token": mfaToken },
      );
      expect(optionsRes.statusCode).toBe(200);
      const { options, challengeId } = optionsRes.json<Ceremony<RequestOptions>>();
      // After a password any passkey adds a factor: UV is welcome, not required.
      expect(options.userVerification).toBe("preferred");
      expect(options.allowCredentials?.map((c) => c.id)).toEqual([
        authenticator.assert({ challenge: "x", rpId: RP_ID }).id,
      ]);
      const response = authenticator.assert(options);
      // Bound to the MFA token it was asked with: another one cannot use it.
      expectRefused(
        await post(
          "/auth/login/mfa",
          { webauthn: { challengeId, response } },
          { "x-mfa-token": other },
        ),
      );
      const res = await post(
        "/auth/login/mfa",
        { webauthn: { challengeId, response } },
        { "x-mfa-token": mfaToken },
      );
      expect(res.statusCode).toBe(200);
      expect(decodeJwt(res.json().accessToken).amr).toEqual(["pwd", "hwk"]);
      // The MFA token worked once.
      const reuse = await post(
        "/auth/login/mfa",
        { code: totpAt(enrolled.secret, app.clock.now()) },
        { "x-mfa-token": mfaToken },
      );
      expect(reuse.statusCode).toBe(401);
    });

    it("gives no options for an MFA token the sign-in could no longer finish with", async () => {
      // Regression: the options call only checked the token's signature, so after every
      // session was ended (or TOTP turned off) it still handed out a challenge and the
      // account's credential IDs for a sign-in POST /auth/login/mfa then refused.
      const enrolled = await enrolledUser(app);
      const reg = await registrationOptions(enrolled.accessToken);
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      await post(
        "/webauthn/register/verify",
        { challengeId: reg.challengeId, response: authenticator.register(reg.options) },
        bearer(enrolled.accessToken),
      );
      const { mfaToken } = (await passwordLogin(app, enrolled.email)).json();
      const options = () =>
        post("/auth/login/mfa/webauthn/options", {}, { "x-mfa-token": mfaToken });
      expect((await options()).statusCode).toBe(200);
      const all = await post("/auth/logout/all", {}, bearer(enrolled.accessToken));
      expect(all.statusCode).toBe(204);
      const stale = await options();
      expect(stale.statusCode).toBe(401);
      expect(stale.json().code).toBe("invalid_token");
    });

    it("needs an MFA token, and a passkey on the account", async () => {
      const none = await post("/auth/login/mfa/webauthn/options", {});
      expect(none.statusCode).toBe(401);
      const enrolled = await enrolledUser(app);
      const { mfaToken } = (await passwordLogin(app, enrolled.email)).json();
      const res = await post("/auth/login/mfa/webauthn/options", {}, { "x-mfa-token": mfaToken });
      expect(res.statusCode).toBe(409);
    });
  });

  describe("step-up and deletion", () => {
    it("a passkey gives a step-up token, which deleting a passkey needs", async () => {
      const { authenticator, accessToken, credentialId } = await withPasskey();
      const del = () =>
        app.http.inject({
          method: "DELETE",
          url: `/webauthn/credentials/${credentialId}`,
          headers: { ...bearer(accessToken), ...(stepUp ? { "x-step-up-token": stepUp } : {}) },
        });
      let stepUp = "";
      const without = await del();
      expect(without.statusCode).toBe(403);
      expect(without.json().code).toBe("step_up_required");

      const optionsRes = await post("/auth/step-up/webauthn/options", {}, bearer(accessToken));
      expect(optionsRes.statusCode).toBe(200);
      const { options, challengeId } = optionsRes.json<Ceremony<RequestOptions>>();
      // A wrong origin is refused here too, and uses the challenge up.
      expectRefused(
        await post(
          "/auth/step-up",
          {
            webauthn: {
              challengeId,
              response: authenticator.assert(options, { origin: "https://phish.example" }),
            },
          },
          bearer(accessToken),
        ),
      );
      const fresh = (await post("/auth/step-up/webauthn/options", {}, bearer(accessToken))).json<
        Ceremony<RequestOptions>
      >();
      const granted = await post(
        "/auth/step-up",
        {
          webauthn: {
            challengeId: fresh.challengeId,
            response: authenticator.assert(fresh.options),
          },
        },
        bearer(accessToken),
      );
      expect(granted.statusCode).toBe(200);
      stepUp = granted.json().stepUpToken;
      expect(decodeJwt(stepUp)).toMatchObject({ typ: "step_up", amr: ["hwk"] });

      expect((await del()).statusCode).toBe(204);
      expect((await del()).statusCode).toBe(404);
      expectRefused(await passkeyLogin(authenticator));
    });

    it("a step-up challenge is bound to its session", async () => {
      const { authenticator, accessToken } = await withPasskey();
      const { email } = await me(accessToken);
      const second = (await passwordLogin(app, email)).json().accessToken;
      const { options, challengeId } = (
        await post("/auth/step-up/webauthn/options", {}, bearer(accessToken))
      ).json<Ceremony<RequestOptions>>();
      const res = await post(
        "/auth/step-up",
        { webauthn: { challengeId, response: authenticator.assert(options) } },
        bearer(second),
      );
      expectRefused(res);
    });
  });

  it("mails the owner when a passkey is added", async () => {
    await withPasskey();
    await app.svc.mailer.flush();
    const dir = join(app.svc.config.dataDir, "outbox");
    const mails = readdirSync(dir).map((f) =>
      readFileSync(join(dir, f), "utf8").replace(/=\r?\n/g, ""),
    );
    const notice = mails.find((m) => m.includes("a security setting of your account changed"));
    expect(notice).toContain('A passkey named "Laptop" was added.');
  });

  it("mails the owner when a passkey is deleted", async () => {
    // Regression: adding a passkey and turning MFA off were mailed, removing a passkey
    // (a way in, and a second factor) was not: a takeover could strip them unseen.
    const { accessToken, credentialId } = await withPasskey();
    const stepUp = await post("/auth/step-up", { password: PASSWORD }, bearer(accessToken));
    const del = await app.http.inject({
      method: "DELETE",
      url: `/webauthn/credentials/${credentialId}`,
      headers: { ...bearer(accessToken), "x-step-up-token": stepUp.json().stepUpToken },
    });
    expect(del.statusCode).toBe(204);
    await app.svc.mailer.flush();
    const dir = join(app.svc.config.dataDir, "outbox");
    const mails = readdirSync(dir).map((f) =>
      readFileSync(join(dir, f), "utf8").replace(/=\r?\n/g, ""),
    );
    expect(mails.some((m) => m.includes('The passkey named "Laptop" was removed.'))).toBe(true);
  });

  it("deleting the account deletes its passkeys", async () => {
    const { authenticator, accessToken } = await withPasskey();
    const { email } = await me(accessToken);
    const { options, challengeId } = await loginOptions({ identifier: email });
    const stepUp = await post("/auth/step-up", { password: PASSWORD }, bearer(accessToken));
    const del = await app.http.inject({
      method: "DELETE",
      url: "/users/me",
      headers: { ...bearer(accessToken), "x-step-up-token": stepUp.json().stepUpToken },
    });
    expect(del.statusCode).toBe(204);
    const res = await post("/auth/webauthn/verify", {
      challengeId,
      response: authenticator.assert(options),
    });
    expectRefused(res);
  });

  it("answers options to a request without a body", async () => {
    const res = await app.http.inject({ method: "POST", url: "/auth/webauthn/options" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["cache-control"]).toBe("no-store");
    expect(res.json().options.allowCredentials ?? []).toEqual([]);
  });
});

describe("passkey sign-in when email verification is required", () => {
  it("refuses an unverified address, like password login", async () => {
    const app = await startTestApp({ emailVerificationRequired: true });
    const setVerified = async (id: string, verified: number) => {
      const db = await openAppDb(app);
      try {
        await db.kysely
          .updateTable("users")
          .set({ email_verified: verified })
          .where("id", "=", id)
          .execute();
      } finally {
        await db.close();
      }
      app.svc.sessions.userChanged(id);
    };
    try {
      const register = await app.http.inject({
        method: "POST",
        url: "/auth/register",
        ...json({ email: "unverified@example.com", password: PASSWORD }),
      });
      expect(register.statusCode).toBe(202);
      const user = await app.svc.store.users.findByEmail("unverified@example.com");
      await setVerified(user?.id ?? "", 1);
      const { accessToken } = (await passwordLogin(app, "unverified@example.com")).json();
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      const start = await app.http.inject({
        method: "POST",
        url: "/webauthn/register/options",
        headers: bearer(accessToken),
      });
      const { options, challengeId } = start.json<Ceremony<CreationOptions>>();
      await app.http.inject({
        method: "POST",
        url: "/webauthn/register/verify",
        ...json({ challengeId, response: authenticator.register(options) }),
        headers: { ...bearer(accessToken), "content-type": "application/json" },
      });
      await setVerified(user?.id ?? "", 0);
      const login = await app.http.inject({ method: "POST", url: "/auth/webauthn/options" });
      const ceremony = login.json<Ceremony<RequestOptions>>();
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/webauthn/verify",
        ...json({
          challengeId: ceremony.challengeId,
          response: authenticator.assert(ceremony.options),
        }),
      });
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe("email_not_verified");
    } finally {
      await app.close();
    }
  });
});

describe("relying party from configuration", () => {
  it("takes the RP ID and origins from the configuration, and passkeys work from each origin", async () => {
    const app = await startTestApp({
      publicUrl: "https://auth.example.com",
      webauthn: { rpId: "example.com", rpName: "Example", origins: ["https://app.example.com"] },
    });
    try {
      const user = await registerUser(app, { password: PASSWORD });
      const authenticator = new SoftAuthenticator({ origin: "https://app.example.com" });
      const reg = await app.http.inject({
        method: "POST",
        url: "/webauthn/register/options",
        headers: bearer(user.accessToken),
      });
      const { options, challengeId } = reg.json<Ceremony<CreationOptions>>();
      expect(options.rp).toEqual({ id: "example.com", name: "Example" });
      const verify = await app.http.inject({
        method: "POST",
        url: "/webauthn/register/verify",
        ...json({ challengeId, response: authenticator.register(options) }),
        headers: { ...bearer(user.accessToken), "content-type": "application/json" },
      });
      expect(verify.statusCode).toBe(201);
      // The server's own origin is not on the list: a page there cannot use the passkey.
      const login = async (tamper: Tamper) => {
        const start = await app.http.inject({ method: "POST", url: "/auth/webauthn/options" });
        const { options: o, challengeId: id } = start.json<Ceremony<RequestOptions>>();
        return app.http.inject({
          method: "POST",
          url: "/auth/webauthn/verify",
          ...json({ challengeId: id, response: authenticator.assert(o, tamper) }),
        });
      };
      expect((await login({ origin: "https://auth.example.com" })).statusCode).toBe(400);
      expect((await login({})).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("defaults to the public URL and refuses an RP ID the origins are not under", () => {
    const config = loadConfig({ LATCHKEY_PUBLIC_URL: "https://login.example.org:8443/" });
    expect(config.webauthn).toEqual({
      rpId: "login.example.org",
      rpName: "Latchkey",
      origins: ["https://login.example.org:8443"],
    });
    const fromEnv = loadConfig({
      LATCHKEY_PUBLIC_URL: "https://login.example.org",
      LATCHKEY_WEBAUTHN_RP_ID: "example.org",
      LATCHKEY_WEBAUTHN_ORIGINS: "https://a.example.org, https://example.org",
    });
    expect(fromEnv.webauthn.origins).toEqual(["https://a.example.org", "https://example.org"]);
    for (const env of [
      { LATCHKEY_WEBAUTHN_RP_ID: "other.org" },
      { LATCHKEY_WEBAUTHN_RP_ID: "ample.org" },
      { LATCHKEY_WEBAUTHN_ORIGINS: "https://example.org/path" },
    ]) {
      expect(() => loadConfig({ LATCHKEY_PUBLIC_URL: "https://example.org", ...env })).toThrow(
        ConfigError,
      );
    }
  });
});
