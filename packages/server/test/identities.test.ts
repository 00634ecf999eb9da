import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sha256 } from "../src/domain/crypto.js";
import { uuidv7 } from "../src/domain/ids.js";
import { startTestApp, type TestApp } from "./helpers.js";

/** The identity store's races, on the real database (both in CI). */
describe("identity store", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await startTestApp();
  });
  afterEach(() => app.close());

  const passwordlessUser = async (providers: string[]) => {
    const { store } = app.svc;
    const now = app.clock.now();
    const user = await store.users.create(
      { id: uuidv7(now), email: null, username: null, passwordHash: null, role: "user" },
      now,
    );
    for (const provider of providers) {
      await store.identities.link(
        { provider, subject: `${provider}-subject`, userId: user.id, email: null, tokens: null },
        now,
      );
    }
    return user.id;
  };

  it("of two concurrent unlinks of a password-less user's two identities, only one passes", async () => {
    const userId = await passwordlessUser(["one", "two"]);
    const { store } = app.svc;
    const unlink = (provider: string) =>
      store.transaction((tx) => tx.identities.unlinkUnlessLast(userId, provider, app.clock.now()));
    const outcomes = await Promise.all([unlink("one"), unlink("two")]);
    expect(outcomes.sort()).toEqual(["last", "unlinked"]);
    expect(await store.identities.listForUser(userId)).toHaveLength(1);
  });

  const addPasskey = (userId: string, id: string) =>
    app.svc.store.webauthn.create(
      {
        id,
        userId,
        name: "key",
        publicKey: "cose",
        counter: 0,
        transports: [],
        deviceType: "singleDevice",
        backedUp: false,
      },
      app.clock.now(),
    );

  it("a passkey counts as a way to sign in: the last identity of a password-less user may go", async () => {
    const userId = await passwordlessUser(["one"]);
    const { store } = app.svc;
    const unlink = () =>
      store.transaction((tx) => tx.identities.unlinkUnlessLast(userId, "one", app.clock.now()));
    await addPasskey(userId, "passkey-1");
    expect(await unlink()).toBe("unlinked");
  });

  it("an unproven account claimed through a provider loses the passkeys someone may have planted", async () => {
    const { store } = app.svc;
    const now = app.clock.now();
    const user = await store.users.create(
      {
        id: uuidv7(now),
        email: "planted@example.com",
        username: null,
        passwordHash: "x",
        role: "user",
      },
      now,
    );
    await addPasskey(user.id, "planted-passkey");
    expect(await store.identities.resetUnprovenAccount(user.id, now)).toBe(true);
    expect(await store.webauthn.listForUser(user.id)).toEqual([]);
  });

  it("reads a user with all their identities in one go, and without any", async () => {
    const both = await passwordlessUser(["one", "two"]);
    const none = await passwordlessUser([]);
    const user = await app.svc.store.users.findById(both);
    expect(user?.identities.map((i) => i.provider).sort()).toEqual(["one", "two"]);
    expect((await app.svc.store.users.findById(none))?.identities).toEqual([]);
  });

  it("hands an exchange code to exactly one of two concurrent takers, and never after expiry", async () => {
    const userId = await passwordlessUser(["one"]);
    const { identities } = app.svc.store;
    const now = app.clock.now();
    const code = { userId, provider: "one", ip: "203.0.113.5", userAgent: "UA", sessionEpoch: 3 };
    await identities.saveCode(sha256("code-a"), code, now + 60_000);
    const taken = await Promise.all([
      identities.takeCode(sha256("code-a"), now),
      identities.takeCode(sha256("code-a"), now),
    ]);
    expect(taken.filter(Boolean)).toEqual([code]);

    await identities.saveCode(sha256("code-b"), code, now + 60_000);
    expect(await identities.takeCode(sha256("code-b"), now + 60_000)).toBeUndefined();
  });
});
