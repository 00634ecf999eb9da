import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/load.js";
import type { ConfigInput } from "../src/config/schema.js";
import { bearer, openAppDb, registerUser, startTestApp, type TestApp } from "./helpers.js";
import { APP_ORIGIN, Browser } from "./oauth/browser.js";
import { start } from "./oauth/flow.js";
import { type FakeGithub, startFakeGithub } from "./oauth/github.js";

type Provider = ConfigInput["oauth"]["providers"][number];

describe("plain OAuth 2.0 sign-in (GitHub-style)", () => {
  let gh: FakeGithub;
  let app: TestApp | undefined;
  let browser: Browser;

  beforeAll(async () => {
    gh = await startFakeGithub();
  });
  afterAll(() => gh.close());
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const provider = (): Provider => ({
    id: "github",
    name: "GitHub",
    type: "oauth2",
    clientId: gh.clientId,
    clientSecret: gh.clientSecret,
    authorizationUrl: `${gh.origin}/login/oauth/authorize`,
    tokenUrl: `${gh.origin}/login/oauth/access_token`,
    userInfoUrl: `${gh.origin}/user`,
    emailsUrl: `${gh.origin}/user/emails`,
    storeTokens: true,
  });

  async function boot() {
    const started = await startTestApp({
      cookies: { secure: false },
      masterKey: "a-master-key-of-at-least-32-characters!",
      oauth: { providers: [provider()] },
    });
    app = started;
    browser = new Browser(started);
    return started;
  }

  /** Start, let the provider approve (it redirects at once), and run the callback. */
  async function signIn() {
    const authUrl = await start(browser, "github");
    const approved = await browser.get(authUrl);
    expect(approved.status).toBe(302);
    expect(approved.location?.origin).toBe(APP_ORIGIN);
    return browser.get(approved.location as URL);
  }

  const me = async () => {
    const access = browser.cookie("latchkey.test", "lk_access") as string;
    const res = await (app as TestApp).http.inject({ url: "/users/me", headers: bearer(access) });
    expect(res.statusCode).toBe(200);
    return res.json<{ id: string; email: string; emailVerified: boolean; identities: unknown[] }>();
  };

  it("signs up with the primary verified email, signs in again, keeps the tokens sealed", async () => {
    const app = await boot();
    const listed = await app.http.inject({ url: "/auth/oauth/providers" });
    expect(listed.json()).toEqual([{ id: "github", name: "GitHub", type: "oauth2" }]);
    gh.signedIn = {
      id: 583231,
      login: "octocat",
      email: "public@example.com",
      emails: [
        { email: "secondary@example.com", primary: false, verified: true },
        { email: "octo@example.com", primary: true, verified: true },
      ],
    };
    const authUrl = await start(browser, "github");
    expect(authUrl.searchParams.get("code_challenge_method")).toBe("S256");
    expect(authUrl.searchParams.get("nonce")).toBeNull(); // OAuth 2.0 has no ID token
    expect(authUrl.searchParams.get("scope")).toBe("read:user user:email");

    const page = await signIn();
    expect(page.location?.href).toBe(`${APP_ORIGIN}/ui/`);
    const user = await me();
    expect(user).toMatchObject({ email: "octo@example.com", emailVerified: true });
    expect(user.identities).toEqual([
      expect.objectContaining({ provider: "github", subject: "583231", email: "octo@example.com" }),
    ]);

    await signIn();
    expect((await me()).id).toBe(user.id);

    const db = await openAppDb(app);
    const row = await db.kysely.selectFrom("identities").select("tokens").executeTakeFirstOrThrow();
    await db.close();
    const sealed = row.tokens as string;
    expect(sealed.startsWith("enc:v1:")).toBe(true);
    for (const token of gh.issued) expect(sealed).not.toContain(token);
    // The second sign-in's tokens replaced the first's.
    expect(JSON.parse(app.svc.box.open(sealed))).toMatchObject({ accessToken: gh.issued.at(-1) });
  });

  it("treats an email without a verified primary entry as unverified: never linked", async () => {
    const app = await boot();
    await registerUser(app, { email: "mona@example.com" });
    gh.signedIn = {
      id: 9001,
      login: "mona",
      email: "mona@example.com",
      emails: [{ email: "mona@example.com", primary: true, verified: false }],
    };
    const page = await signIn();
    expect(page.location?.searchParams.get("error")).toBe("email_in_use");

    gh.signedIn = { ...gh.signedIn, id: 9002, email: "new-mona@example.com" };
    await signIn();
    expect(await me()).toMatchObject({ email: "new-mona@example.com", emailVerified: false });
  });

  it("refuses a subject with U+0000 (oauth_failed) and does not keep an email with one", async () => {
    // PostgreSQL's text cannot hold NUL: the sign-in failed there with internal_error and
    // went through on SQLite.
    await boot();
    gh.signedIn = { id: "77\u000077", login: "nul", email: "nul@example.com", emails: [] };
    const refused = await signIn();
    expect(refused.location?.searchParams.get("error")).toBe("oauth_failed");

    gh.signedIn = {
      id: 78,
      login: "nul-mail",
      email: "nul\u0000@example.com",
      emails: [{ email: "nul\u0000mail@example.com", primary: true, verified: true }],
    };
    const page = await signIn();
    expect(page.location?.searchParams.get("error")).toBeNull();
    expect(await me()).toMatchObject({ email: null, emailVerified: false });
  });

  it("refuses a subject with an unpaired surrogate (oauth_failed)", async () => {
    // PostgreSQL stored U+FFFD for it (SQLite its bytes), so on PostgreSQL the provider
    // accounts "80\ud800" and "80\udc00" were one identity: the second signed in as the first.
    await boot();
    for (const id of ["80\ud800", "80\udc00"]) {
      gh.signedIn = { id, login: "half", email: null, emails: [] };
      const refused = await signIn();
      expect(refused.location?.searchParams.get("error")).toBe("oauth_failed");
    }
  });

  it("does not use a provider email the API would refuse (line breaks, spaces, no domain)", async () => {
    await boot();
    gh.signedIn = {
      id: 79,
      login: "crlf",
      email: "crlf@example.com\r\nBcc: all@example.net",
      emails: [{ email: "crlf mail@example.com", primary: true, verified: true }],
    };
    const page = await signIn();
    expect(page.location?.searchParams.get("error")).toBeNull();
    expect(await me()).toMatchObject({ email: null, emailVerified: false });

    gh.signedIn = { id: 80, login: "nodomain", email: "nodomain@", emails: [] };
    expect((await signIn()).location?.searchParams.get("error")).toBeNull();
    expect(await me()).toMatchObject({ email: null });
  });

  it("ends in oauth_denied when the user does not approve", async () => {
    await boot();
    gh.signedIn = undefined;
    const page = await signIn();
    expect(page.location?.searchParams.get("error")).toBe("oauth_denied");
  });

  it("answers 400 oauth_failed, not a 500, when an OIDC provider cannot be discovered", async () => {
    const down = await startTestApp({
      oauth: {
        providers: [
          {
            id: "down",
            name: "Down",
            type: "oidc",
            issuer: "http://127.0.0.1:9",
            clientId: "x",
            storeTokens: false,
          },
        ],
      },
    });
    app = down;
    const res = await down.http.inject({ url: "/auth/oauth/down/start" });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "oauth_failed" });
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  it("checks provider settings at start", () => {
    const load =
      (p: Partial<Provider>, extra: Partial<ConfigInput> = {}) =>
      () =>
        loadConfig({}, { oauth: { providers: [{ ...provider(), ...p }] }, ...extra });
    expect(load({ tokenUrl: undefined })).toThrow(/tokenUrl: required for type oauth2/);
    expect(load({})).toThrow(/storeTokens: needs masterKey/);
    expect(load({ storeTokens: false, tokenUrl: "http://github.example/token" })).toThrow(
      /plain http is allowed on loopback only/,
    );
    expect(load({ type: "oidc", storeTokens: false })).toThrow(ConfigError);
    expect(load({ storeTokens: false, id: "Bad Id" })).toThrow(ConfigError);
    const twice = () =>
      loadConfig(
        {},
        {
          oauth: {
            providers: [
              { ...provider(), storeTokens: false },
              { ...provider(), storeTokens: false },
            ],
          },
        },
      );
    expect(twice).toThrow(/used twice/);
  });
});
