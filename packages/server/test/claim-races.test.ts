import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLink } from "../src/flows/mail-links.js";
import type { OneTimePurpose } from "../src/store/schema.js";
import {
  bearer,
  json,
  openAppDb,
  postJson,
  registerUser,
  startTestApp,
  TEST_DB,
  type TestApp,
} from "./helpers.js";
import { ORIGIN, PASSWORD } from "./mfa-helpers.js";
import { SoftAuthenticator } from "./webauthn-authenticator.js";

/**
 * A squatter registers someone else's address; its owner claims the account from the
 * mailbox (magic link or password reset), which ends every way in the squatter set up.
 * What the squatter's session asked for while the claim ran must not land after it.
 */
describe(`what a squatter's session asks for while the account is claimed (${TEST_DB})`, () => {
  let app: TestApp;
  let n = 0;
  beforeAll(async () => {
    app = await startTestApp({ rateLimit: { publicPerIp: 100_000 } });
  });
  afterAll(() => app.close());

  const email = () => `claimed-${++n}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    postJson(app, url, body, headers);
  const patchMe = (accessToken: string, body: unknown) =>
    app.http.inject({
      method: "PATCH",
      url: "/users/me",
      ...json(body),
      headers: { ...json(body).headers, ...bearer(accessToken) },
    });
  const tokenOf = async (user: { id: string; email: string }, purpose: OneTimePurpose) => {
    const { link } = await createLink(app.svc, user, purpose);
    return new URL(link).searchParams.get("token") as string;
  };

  /** An unproven account on `address` with the squatter's session, and the owner's link. */
  async function squatted(purpose: OneTimePurpose = "magic_link") {
    const address = email();
    const squatter = await registerUser(app, { email: address, password: PASSWORD });
    const link = await tokenOf({ id: squatter.user.id, email: address }, purpose);
    const claim = () =>
      purpose === "magic_link"
        ? post("/auth/magic-link/verify", { token: link })
        : post("/auth/password/reset", { token: link, newPassword: "the owner's own passphrase" });
    // Nothing left in the background (the registration's mail opens a transaction too).
    await app.svc.mailer.flush();
    await app.svc.auditLog.flush();
    return { address, squatter, claim };
  }

  /**
   * The claim runs, to its commit, once the request under test has passed the guard and
   * reaches its first transaction: the interleaving PostgreSQL produces on its own when
   * the request's reads do not wait for the claim's row locks.
   */
  function claimAtNextTransaction(claim: () => Promise<{ statusCode: number }>) {
    const store = app.svc.store;
    const original = store.transaction;
    let claimed: number | undefined;
    store.transaction = async function (this: typeof store, fn) {
      store.transaction = original;
      claimed = (await claim()).statusCode;
      return original.call(this, fn);
    } as typeof original;
    return () => {
      store.transaction = original;
      return claimed;
    };
  }

  const rows = async (table: "api_tokens" | "webauthn_credentials", userId: string) => {
    const db = await openAppDb(app);
    const found = await db.kysely
      .selectFrom(table)
      .select("user_id")
      .where("user_id", "=", userId)
      .execute();
    await db.close();
    return found.length;
  };

  it("an API token asked for as the claim commits is refused, not left behind", async () => {
    for (const purpose of ["magic_link", "reset_password"] as const) {
      const { squatter, claim } = await squatted(purpose);
      const claimed = claimAtNextTransaction(claim);
      const res = await post(
        "/tokens",
        { name: "backdoor", scopes: ["*"] },
        bearer(squatter.accessToken),
      );
      expect(claimed(), purpose).toBeGreaterThanOrEqual(200);
      expect(claimed(), purpose).toBeLessThan(300);
      expect(res.json(), purpose).toMatchObject({ status: 401, code: "session_revoked" });
      expect(await rows("api_tokens", squatter.user.id), purpose).toBe(0);
    }
  });

  it("an email change asked for as the claim commits is refused; the address stays the owner's", async () => {
    for (const purpose of ["magic_link", "reset_password"] as const) {
      const { address, squatter, claim } = await squatted(purpose);
      const claimed = claimAtNextTransaction(claim);
      const res = await patchMe(squatter.accessToken, { email: email(), allowedIps: ["10.6.6.6"] });
      expect(claimed(), purpose).toBeLessThan(300);
      expect(res.json(), purpose).toMatchObject({ status: 401, code: "session_revoked" });
      const user = await app.svc.store.users.findById(squatter.user.id);
      expect(user, purpose).toMatchObject({ email: address, emailVerified: true, allowedIps: [] });
    }
  });

  it("a passkey whose ceremony the claim overtakes is refused, not left behind", async () => {
    const { squatter, claim } = await squatted();
    const options = await post("/webauthn/register/options", {}, bearer(squatter.accessToken));
    const { options: creation, challengeId } = options.json();
    const response = new SoftAuthenticator({ origin: ORIGIN }).register(creation);
    const claimed = claimAtNextTransaction(claim);
    const res = await post(
      "/webauthn/register/verify",
      { challengeId, response, name: "backdoor" },
      bearer(squatter.accessToken),
    );
    expect(claimed()).toBe(200);
    expect(res.json()).toMatchObject({ status: 401, code: "session_revoked" });
    expect(await rows("webauthn_credentials", squatter.user.id)).toBe(0);
  });

  it("truly concurrent: nothing the squatter asks for during a claim outlives it", async () => {
    const ROUNDS = 12;
    let claims = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const { address, squatter, claim } = await squatted(
        round % 2 ? "reset_password" : "magic_link",
      );
      const asks = Array.from({ length: 3 }, (_, k) =>
        delay(k + (round % 3)).then(() =>
          post("/tokens", { name: `t${k}`, scopes: ["*"] }, bearer(squatter.accessToken)),
        ),
      );
      const change = delay(round % 4).then(() => patchMe(squatter.accessToken, { email: email() }));
      const [claimed, ...answers] = await Promise.all([claim(), change, ...asks]);
      for (const res of answers) expect(res.statusCode, res.body).toBeLessThan(500);
      if (claimed.statusCode >= 300) {
        // The email change came first and voided the link: the claim did nothing.
        expect(claimed.json()).toMatchObject({ code: "invalid_or_expired_token" });
        continue;
      }
      claims++;
      expect(await rows("api_tokens", squatter.user.id), `round ${round}`).toBe(0);
      const user = await app.svc.store.users.findById(squatter.user.id);
      expect(user, `round ${round}`).toMatchObject({ email: address, emailVerified: true });
    }
    expect(claims).toBeGreaterThan(0);
  });
});
