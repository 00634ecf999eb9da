import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ConfigInput } from "../src/config/schema.js";
import { createLink } from "../src/flows/mail-links.js";
import type { MailMessage, MailTransport } from "../src/mail/transport.js";
import { bearer, json, openAppDb, registerUser, startTestApp, type TestApp } from "./helpers.js";
import { enrolledUser, PASSWORD, passwordLogin, stepUpToken, totpAt } from "./mfa-helpers.js";
import { APP_ORIGIN, Browser, USER_AGENT } from "./oauth/browser.js";
import { start, userAtIdp } from "./oauth/flow.js";
import { type IdTokenRewrite, startIdp, type TestIdp } from "./oauth/idp.js";

const SPA = "http://spa.test";
const CALLBACK = `${APP_ORIGIN}/auth/oauth/idp/callback`;
const CALLBACK_2 = `${APP_ORIGIN}/auth/oauth/idp2/callback`;

interface Me {
  id: string;
  email: string | null;
  emailVerified: boolean;
  identities: Array<{ provider: string; subject: string; email: string | null; linkedAt: string }>;
}

describe("OpenID Connect sign-in against a real provider", () => {
  let idp: TestIdp;
  let app: TestApp;
  let browser: Browser;
  let n = 0;

  beforeAll(async () => {
    idp = await startIdp([CALLBACK, CALLBACK_2]);
  });
  afterAll(() => idp.close());
  afterEach(() => app.close());

  async function boot(
    delivery: ConfigInput["tokens"]["delivery"] = "both",
    extra: Partial<ConfigInput> = {},
    mailTransport?: MailTransport,
    providerIds = ["idp"],
  ) {
    app = await startTestApp(
      {
        ...extra,
        cookies: { secure: false },
        allowedOrigins: [APP_ORIGIN, SPA],
        tokens: { delivery },
        oauth: {
          providers: providerIds.map((id) => ({
            id,
            name: "Test IdP",
            type: "oidc" as const,
            issuer: idp.issuer,
            clientId: idp.clientId,
            clientSecret: idp.clientSecret,
            storeTokens: false,
          })),
        },
      },
      { mailTransport },
    );
    browser = new Browser(app);
  }

  /** A fresh IdP account; its subject. */
  function idpAccount(email?: string, emailVerified = true): string {
    const sub = `sub-${++n}-${Math.random().toString(36).slice(2, 8)}`;
    idp.accounts.set(sub, { email, emailVerified });
    return sub;
  }

  /** The whole round trip in this browser; the app's final answer (302 to the SPA). */
  async function signIn(
    account: string,
    query = `?redirect=${encodeURIComponent(`${SPA}/done`)}`,
    provider = "idp",
  ) {
    const authUrl = await start(browser, provider, query);
    return browser.get(await userAtIdp(browser, authUrl, { account }));
  }

  const me = async (accessToken: string) => {
    const res = await app.http.inject({ url: "/users/me", headers: bearer(accessToken) });
    expect(res.statusCode).toBe(200);
    return res.json<Me>();
  };
  const accessCookie = () => browser.cookie("latchkey.test", "lk_access") as string;
  /** The address's owner resets the password from the mailbox (`sent` captures the mail). */
  async function resetFromMailbox(sent: MailMessage[], address: string) {
    await app.svc.mailer.flush();
    sent.length = 0;
    await app.http.inject({
      method: "POST",
      url: "/auth/password/forgot",
      ...json({ email: address }),
    });
    await app.svc.mailer.flush();
    const link = sent.find((m) => m.to === address)?.link as string;
    const token = new URL(link).searchParams.get("token");
    return app.http.inject({
      method: "POST",
      url: "/auth/password/reset",
      ...json({ token, newPassword: "a brand new passphrase" }),
    });
  }
  const auditTypes = async (userId: string) => {
    await app.svc.auditLog.flush();
    const db = await openAppDb(app);
    const rows = await db.kysely
      .selectFrom("audit_events")
      .select(["type", "detail"])
      .where("user_id", "=", userId)
      .orderBy("created_at")
      .execute();
    await db.close();
    return rows.map((r) => ({ type: r.type, ...JSON.parse(r.detail) }));
  };
  /** POST with a bearer token and a JSON body. */
  const postAs = (url: string, accessToken: string, body: unknown) =>
    app.http.inject({
      method: "POST",
      url,
      headers: { ...bearer(accessToken), "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
  const markEmailVerified = async (userId: string) => {
    const db = await openAppDb(app);
    await db.kysely
      .updateTable("users")
      .set({ email_verified: 1, email_ever_verified: 1 })
      .where("id", "=", userId)
      .execute();
    await db.close();
  };
  const errorOf = (location: URL | undefined) => location?.searchParams.get("error");

  it("lists the configured providers", async () => {
    await boot();
    const res = await app.http.inject({ url: "/auth/oauth/providers" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([{ id: "idp", name: "Test IdP", type: "oidc" }]);
  });

  it("starts with PKCE S256, state and nonce in a sealed HttpOnly SameSite=Lax cookie", async () => {
    await boot();
    const page = await browser.get(
      `${APP_ORIGIN}/auth/oauth/idp/start?redirect=${encodeURIComponent(`${SPA}/x`)}`,
    );
    expect(page.status).toBe(302);
    const authUrl = page.location as URL;
    expect(authUrl.origin).toBe(idp.issuer);
    const q = authUrl.searchParams;
    expect(q.get("response_type")).toBe("code");
    expect(q.get("client_id")).toBe(idp.clientId);
    expect(q.get("redirect_uri")).toBe(CALLBACK);
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("state")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("nonce")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get("scope")).toBe("openid email profile");
    const line = page.setCookies.find((c) => c.startsWith("lk_oauth=")) as string;
    expect(line).toMatch(/HttpOnly/i);
    expect(line).toMatch(/SameSite=Lax/i);
    expect(line).toMatch(/Path=\/auth\/oauth/);
    expect(line).toMatch(/Max-Age=600/);
    // Sealed: neither the state, the redirect nor the user agent can be read from it.
    const sealed = browser.cookie("latchkey.test", "lk_oauth") as string;
    const opened = Buffer.from(sealed, "base64url").toString("latin1");
    for (const secret of [q.get("state") as string, "spa.test", "TestBrowser"]) {
      expect(opened).not.toContain(secret);
    }

    const asJson = await app.http.inject({
      url: "/auth/oauth/idp/start",
      headers: { accept: "application/json" },
    });
    expect(asJson.statusCode).toBe(200);
    expect(new URL(asJson.json<{ authUrl: string }>().authUrl).origin).toBe(idp.issuer);
  });

  it("refuses a redirect off the allowed origins (400) and an unknown provider (404)", async () => {
    await boot();
    for (const redirect of ["https://evil.test/", "/relative", "javascript:alert(1)"]) {
      const res = await app.http.inject({
        url: `/auth/oauth/idp/start?redirect=${encodeURIComponent(redirect)}`,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: "validation_failed" });
      expect(res.headers["set-cookie"]).toBeUndefined();
    }
    const unknown = await app.http.inject({ url: "/auth/oauth/nope/start" });
    expect(unknown.statusCode).toBe(404);
  });

  it("refuses redirects that only look allowed: blob: on an allowed origin, user info, scheme tricks", async () => {
    await boot();
    const refused = [
      "blob:http://spa.test/0f8fad5b-d9cb-469f-a165-70867728950e", // origin spa.test, not a page
      "http://evil.test@spa.test/done", // user info
      "http://:secret@spa.test/done",
      "http://spa.test@evil.test/", // the host is evil.test
      "//spa.test/done",
      "http:\\\\evil.test/",
      "http://spa.test./done",
      "http://spa.test:8080/done",
      "data:text/html,<script>alert(1)</script>",
      "https://spa.test/done", // another scheme is another origin
    ];
    for (const redirect of refused) {
      const res = await app.http.inject({
        url: `/auth/oauth/idp/start?redirect=${encodeURIComponent(redirect)}`,
      });
      expect(res.statusCode, redirect).toBe(400);
      expect(res.json()).toMatchObject({
        code: "validation_failed",
        errors: [{ path: "redirect" }],
      });
      expect(res.headers["set-cookie"]).toBeUndefined();
    }
    // Spelling variants of an allowed origin are that origin.
    for (const redirect of [
      "HTTP://SPA.TEST/done",
      "http://spa.test:80/done",
      "http:spa.test/done",
    ]) {
      const res = await app.http.inject({
        url: `/auth/oauth/idp/start?redirect=${encodeURIComponent(redirect)}`,
      });
      expect(res.statusCode, redirect).toBe(302);
    }
    const page = await signIn(idpAccount("spelled@example.com"), "?redirect=HTTP://SPA.TEST:80/x");
    expect(page.location?.href).toBe(`${SPA}/x`);
  });

  it("refuses a redirect whose start cookie a browser would drop (over 4096 bytes)", async () => {
    await boot();
    const eve = await registerUser(app, { password: PASSWORD });
    const startWith = async (redirect: string, userAgent = "Mozilla/5.0 (Ü) ".repeat(40)) => {
      const grant = await app.http.inject({
        method: "POST",
        url: "/auth/oauth/link-token",
        headers: {
          ...bearer(eve.accessToken),
          "x-step-up-token": await stepUpToken(app, eve.accessToken),
        },
      });
      const link = grant.json<{ linkToken: string }>().linkToken;
      return app.http.inject({
        url: `/auth/oauth/idp/start?link=${link}&redirect=${encodeURIComponent(redirect)}`,
        headers: { "user-agent": userAgent }, // over 512: cut to 512
      });
    };
    const longest = `${SPA}/${"a".repeat(2048 - SPA.length - 1)}`;
    // Any user agent: one of quotes, each escaped in the sealed JSON, took the cookie over.
    for (const userAgent of ["Mozilla/5.0 (Ü) ".repeat(40), '"'.repeat(600)]) {
      const res = await startWith(longest, userAgent);
      expect(res.statusCode).toBe(302);
      const line = [res.headers["set-cookie"]].flat().find((l) => l?.startsWith("lk_oauth="));
      // Name, value and attributes (RFC 6265 §6.1), with the Secure a deployment adds.
      expect(`${line}; Secure`.length).toBeLessThanOrEqual(4096);
    }

    for (const redirect of [`${longest}a`, `${SPA}/${"é".repeat(400)}`]) {
      const refused = await startWith(redirect); // é is kept as %C3%A9: 2400 characters
      expect(refused.statusCode).toBe(400);
      expect(refused.json()).toMatchObject({
        code: "validation_failed",
        errors: [{ path: "redirect" }],
      });
      expect(refused.headers["set-cookie"]).toBeUndefined();
    }
  });

  it("signs up through the provider, then signs the same user in again", async () => {
    await boot();
    const sub = idpAccount("Alice@Example.com");
    const first = await signIn(sub);
    expect(first.status).toBe(302);
    expect(first.location?.href).toBe(`${SPA}/done`);
    expect(browser.cookie("latchkey.test", "lk_oauth")).toBeUndefined();
    expect(browser.cookie("latchkey.test", "lk_refresh")).toBeTruthy();
    const claims = decodeJwt(accessCookie());
    expect(claims.amr).toEqual(["fed"]);
    const user = await me(accessCookie());
    expect(user).toMatchObject({ email: "alice@example.com", emailVerified: true });
    expect(user.identities).toEqual([
      { provider: "idp", subject: sub, email: "Alice@Example.com", linkedAt: expect.any(String) },
    ]);
    // The session records the browser that started the flow.
    const sessions = await app.http.inject({ url: "/sessions", headers: bearer(accessCookie()) });
    expect(sessions.json<{ sessions: Array<{ userAgent: string }> }>().sessions[0]?.userAgent).toBe(
      USER_AGENT,
    );

    // Provider tokens are not kept unless configured.
    const db = await openAppDb(app);
    const stored = await db.kysely.selectFrom("identities").select("tokens").execute();
    await db.close();
    expect(stored).toEqual([{ tokens: null }]);

    const second = await signIn(sub);
    expect(second.location?.href).toBe(`${SPA}/done`);
    const again = await me(accessCookie());
    expect(again.id).toBe(user.id);
    expect(again.identities).toHaveLength(1);
    const events = await auditTypes(user.id);
    expect(events).toEqual([
      expect.objectContaining({ type: "register", provider: "idp" }),
      expect.objectContaining({ type: "login_succeeded", method: "oauth", provider: "idp" }),
      expect.objectContaining({ type: "login_succeeded", method: "oauth", provider: "idp" }),
    ]);
  });

  it("goes to /ui/ when no redirect was named", async () => {
    await boot();
    const page = await signIn(idpAccount("noredirect@example.com"), "");
    expect(page.location?.href).toBe(`${APP_ORIGIN}/ui/`);
  });

  it("links a verified provider email to the existing account with that email", async () => {
    await boot();
    const local = await registerUser(app, { email: "bob@example.com", password: PASSWORD });
    await markEmailVerified(local.user.id);
    const page = await signIn(idpAccount("bob@example.com"));
    expect(page.location?.href).toBe(`${SPA}/done`);
    const user = await me(accessCookie());
    expect(user.id).toBe(local.user.id);
    expect(user.identities.map((i) => i.provider)).toEqual(["idp"]);
    // Nothing else about the account changed: the password still works.
    expect((await passwordLogin(app, "bob@example.com")).statusCode).toBe(200);
  });

  it("claiming an account whose email was never verified ends the pre-registered credentials", async () => {
    await boot();
    const squatter = await registerUser(app, { email: "carol@example.com", password: PASSWORD });
    const page = await signIn(idpAccount("carol@example.com"));
    expect(page.location?.href).toBe(`${SPA}/done`);
    const user = await me(accessCookie());
    expect(user).toMatchObject({ id: squatter.user.id, emailVerified: true });
    expect((await passwordLogin(app, "carol@example.com")).statusCode).toBe(401);
    const old = await app.http.inject({ url: "/users/me", headers: bearer(squatter.accessToken) });
    expect(old.statusCode).toBe(401);
    expect(old.json()).toMatchObject({ code: "session_revoked" });
  });

  it("claiming an account whose email was never verified ends the identities linked before", async () => {
    await boot("both", {}, undefined, ["idp", "idp2"]);
    // The attacker signs up at one provider that does not vouch for the victim's address...
    const attacker = idpAccount("victim@example.com", false);
    await signIn(attacker);
    const squatted = await me(accessCookie());
    expect(squatted).toMatchObject({ email: "victim@example.com", emailVerified: false });

    // ...the victim arrives through another provider, which does.
    browser = new Browser(app);
    const page = await signIn(idpAccount("victim@example.com"), undefined, "idp2");
    expect(page.location?.href).toBe(`${SPA}/done`);
    const claimed = await me(accessCookie());
    expect(claimed).toMatchObject({ id: squatted.id, emailVerified: true });
    expect(claimed.identities.map((i) => i.provider)).toEqual(["idp2"]);

    // The attacker's identity no longer opens the account.
    browser = new Browser(app);
    const again = await signIn(attacker);
    expect(errorOf(again.location)).toBe("email_in_use");
    expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
    const events = await auditTypes(squatted.id);
    expect(events).toContainEqual(
      expect.objectContaining({
        type: "identity_linked",
        via: "verified_email",
        credentialsReset: true,
      }),
    );
  });

  it("claiming an unproven account voids the exchange codes its earlier identities were handed", async () => {
    await boot("body", {}, undefined, ["idp", "idp2"]);
    const exchange = (code: string | null | undefined) =>
      app.http.inject({ method: "POST", url: "/auth/oauth/exchange", ...json({ code }) });
    // The attacker's provider does not vouch for the victim's address; they keep a fresh
    // code in hand (each lives 60 s) while waiting for the owner.
    const attacker = idpAccount("wren@example.com", false);
    const created = await exchange((await signIn(attacker)).location?.searchParams.get("code"));
    const squatted = created.json<{ user: Me }>().user;
    const held = (await signIn(attacker)).location?.searchParams.get("code");

    // The owner arrives through a provider that vouches for the address: the account is claimed.
    browser = new Browser(app);
    const page = await signIn(idpAccount("wren@example.com"), undefined, "idp2");
    const owner = await exchange(page.location?.searchParams.get("code"));
    expect(owner.json<{ user: Me }>().user).toMatchObject({ id: squatted.id, emailVerified: true });

    // The code the attacker's identity was handed before the claim opens nothing.
    const late = await exchange(held);
    expect(late.statusCode).toBe(400);
    expect(late.json()).toMatchObject({ code: "invalid_code" });
  });

  it("a password reset that proves an unproven address ends the identities linked before", async () => {
    const sent: MailMessage[] = [];
    const capture: MailTransport = { name: "capture", send: async (m) => void sent.push(m) };
    await boot("both", { emailVerificationRequired: true }, capture);
    // The attacker's provider does not vouch for the victim's address: an account
    // appears with it unverified, and the attacker's identity linked, but no session yet.
    const attacker = idpAccount("quinn@example.com", false);
    expect(errorOf((await signIn(attacker)).location)).toBe("email_not_verified");

    // The victim, told the address is taken, resets the password through their mailbox.
    const reset = await resetFromMailbox(sent, "quinn@example.com");
    expect(reset.statusCode).toBe(204);
    const victim = await passwordLogin(app, "quinn@example.com", "a brand new passphrase");
    expect(victim.statusCode).toBe(200);
    const account = await me(victim.json<{ accessToken: string }>().accessToken);
    expect(account).toMatchObject({ emailVerified: true, identities: [] });

    // The attacker's identity no longer opens the account the victim now uses.
    browser = new Browser(app);
    const again = await signIn(attacker);
    expect(errorOf(again.location)).toBe("email_in_use");
    expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
  });

  it("a sign-in whose identity a claim removes while it reads the account opens nothing", async () => {
    await boot();
    // The squatter's provider does not vouch for the address: an unproven account.
    const squatter = idpAccount("rex@example.com", false);
    await signIn(squatter);
    const account = await me(accessCookie());
    const { link } = await createLink(
      app.svc,
      { id: account.id, email: "rex@example.com" },
      "reset_password",
    );
    const token = new URL(link).searchParams.get("token");
    // The owner's reset commits right after the squatter's next sign-in found its identity.
    const { identities } = app.svc.store;
    const find = identities.find;
    let reset: number | undefined;
    identities.find = async function (this: typeof identities, ...args) {
      const found = await find.apply(this, args);
      identities.find = find;
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/password/reset",
        ...json({ token, newPassword: "the owner's own passphrase" }),
      });
      reset = res.statusCode;
      return found;
    } as typeof find;
    browser = new Browser(app);
    const page = await signIn(squatter);
    identities.find = find;
    expect(reset).toBe(204);
    expect(errorOf(page.location)).toBe("session_revoked");
    expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
  });

  it("a link flow whose session a claim ended meanwhile links nothing to the claimed account", async () => {
    const sent: MailMessage[] = [];
    const capture: MailTransport = { name: "capture", send: async (m) => void sent.push(m) };
    await boot("both", {}, capture);
    // A squatter registers the victim's address and starts linking their own provider.
    const squatter = await registerUser(app, { email: "rita@example.com", password: PASSWORD });
    const grant = await app.http.inject({
      method: "POST",
      url: "/auth/oauth/link-token",
      headers: {
        ...bearer(squatter.accessToken),
        "x-step-up-token": await stepUpToken(app, squatter.accessToken),
      },
    });
    const { linkToken } = grant.json<{ linkToken: string }>();
    const attacker = idpAccount("rita.attacker@example.net", true);
    const authUrl = await start(browser, "idp", `?link=${linkToken}&redirect=${SPA}/settings`);

    // While the squatter is at the provider, the victim resets the password from the mailbox.
    const reset = await resetFromMailbox(sent, "rita@example.com");
    expect(reset.statusCode).toBe(204);

    // The squatter comes back from the provider: nothing joins the account.
    const back = await browser.get(await userAtIdp(browser, authUrl, { account: attacker }));
    expect(errorOf(back.location)).toBe("invalid_or_expired_token");
    const victim = await passwordLogin(app, "rita@example.com", "a brand new passphrase");
    const account = await me(victim.json<{ accessToken: string }>().accessToken);
    expect(account).toMatchObject({ emailVerified: true, identities: [] });
  });

  it("never links an unverified provider email to an existing account (email_in_use)", async () => {
    await boot();
    const local = await registerUser(app, { email: "dave@example.com", password: PASSWORD });
    await markEmailVerified(local.user.id);
    const page = await signIn(idpAccount("dave@example.com", false));
    expect(page.status).toBe(302);
    expect(page.location?.origin).toBe(SPA);
    expect(errorOf(page.location)).toBe("email_in_use");
    expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
    expect((await me(local.accessToken)).identities).toEqual([]);
  });

  it("never claims an account that proved an earlier address and moved to this one", async () => {
    await boot();
    const local = await registerUser(app, { email: "erin@example.com", password: PASSWORD });
    await markEmailVerified(local.user.id);
    const patched = await app.http.inject({
      method: "PATCH",
      url: "/users/me",
      headers: { ...bearer(local.accessToken), "content-type": "application/json" },
      payload: JSON.stringify({ email: "erin.new@example.com" }),
    });
    expect(patched.json()).toMatchObject({ user: { emailVerified: false } });
    const page = await signIn(idpAccount("erin.new@example.com"));
    expect(errorOf(page.location)).toBe("email_in_use");
    expect((await me(local.accessToken)).identities).toEqual([]);
    expect((await passwordLogin(app, "erin.new@example.com")).statusCode).toBe(200);
  });

  it("creates an account with emailVerified false when the provider does not vouch", async () => {
    await boot();
    await signIn(idpAccount("erin@example.com", false));
    expect(await me(accessCookie())).toMatchObject({
      email: "erin@example.com",
      emailVerified: false,
    });
  });

  it("with email verification required, an unverified provider email gets a link, not a session", async () => {
    const sent: MailMessage[] = [];
    const capture: MailTransport = { name: "capture", send: async (m) => void sent.push(m) };
    await boot("both", { emailVerificationRequired: true }, capture);
    const page = await signIn(idpAccount("olga@example.com", false));
    expect(errorOf(page.location)).toBe("email_not_verified");
    expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
    await expect.poll(() => sent.map((m) => m.to)).toEqual(["olga@example.com"]);

    browser = new Browser(app);
    const verified = await signIn(idpAccount("paul@example.com"));
    expect(verified.location?.href).toBe(`${SPA}/done`);
    expect(await me(accessCookie())).toMatchObject({ emailVerified: true });
  });

  it("links through a link token, refuses a used token and another user's identity, and unlinks", async () => {
    await boot();
    const eve = await registerUser(app, { email: "eve@example.com", password: PASSWORD });
    const noStepUp = await app.http.inject({
      method: "POST",
      url: "/auth/oauth/link-token",
      headers: bearer(eve.accessToken),
    });
    expect(noStepUp.statusCode).toBe(403);
    expect(noStepUp.json()).toMatchObject({ code: "step_up_required" });
    const linkToken = async (accessToken: string) => {
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/oauth/link-token",
        headers: {
          ...bearer(accessToken),
          "x-step-up-token": await stepUpToken(app, accessToken),
        },
      });
      expect(res.statusCode).toBe(200);
      const body = res.json<{ linkToken: string; expiresIn: number }>();
      expect(body.expiresIn).toBe(300);
      expect(decodeJwt(body.linkToken)).toMatchObject({
        typ: "oauth_link",
        sub: expect.any(String),
      });
      return body.linkToken;
    };

    const sub = idpAccount("someone-else@example.com", false);
    const token = await linkToken(eve.accessToken);
    const query = `?link=${token}&redirect=${encodeURIComponent(`${SPA}/settings`)}`;
    const linked = await signIn(sub, query);
    expect(linked.location?.href).toBe(`${SPA}/settings?linked=idp`);
    const view = await me(eve.accessToken);
    expect(view.identities).toEqual([
      expect.objectContaining({ provider: "idp", subject: sub, email: "someone-else@example.com" }),
    ]);
    expect(view.email).toBe("eve@example.com");

    // The token works once.
    const reused = await app.http.inject({ url: `/auth/oauth/idp/start?link=${token}` });
    expect(reused.statusCode).toBe(400);
    expect(reused.json()).toMatchObject({ code: "invalid_or_expired_token" });

    // Signing in with that identity now lands on eve.
    const fresh = new Browser(app);
    browser = fresh;
    await signIn(sub);
    expect((await me(accessCookie())).id).toBe(eve.user.id);

    // Frank cannot take eve's identity.
    const frank = await registerUser(app, { password: PASSWORD });
    const taken = await signIn(sub, `?link=${await linkToken(frank.accessToken)}&redirect=${SPA}`);
    expect(errorOf(taken.location)).toBe("identity_in_use");
    expect((await me(frank.accessToken)).identities).toEqual([]);

    // Unlinking needs step-up; eve keeps her password, so it is allowed.
    const unlink = (headers: Record<string, string>) =>
      app.http.inject({ method: "DELETE", url: "/users/me/identities/idp", headers });
    expect((await unlink(bearer(eve.accessToken))).statusCode).toBe(403);
    const stepUp = await stepUpToken(app, eve.accessToken);
    const done = await unlink({ ...bearer(eve.accessToken), "x-step-up-token": stepUp });
    expect(done.statusCode).toBe(204);
    expect((await me(eve.accessToken)).identities).toEqual([]);
    const again = await unlink({ ...bearer(eve.accessToken), "x-step-up-token": stepUp });
    expect(again.statusCode).toBe(404);
    const types = (await auditTypes(eve.user.id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["identity_linked", "identity_unlinked"]));
  });

  it("a guest that comes back by email cannot link a provider: whoever knew the email could", async () => {
    await boot();
    const guest = (body: { username: string; email?: string }) =>
      app.http.inject({ method: "POST", url: "/auth/guest", ...json(body) });
    const linkTokenOf = (accessToken: string) =>
      app.http.inject({
        method: "POST",
        url: "/auth/oauth/link-token",
        headers: bearer(accessToken),
      });
    const owner = (await guest({ username: "owner", email: "gwen@example.com" })).json();
    // Anyone who knows the address opens a session of the same guest, fresh enough to pass
    // step-up (a guest has nothing to step up with) ...
    const intruder = (await guest({ username: "intruder", email: "gwen@example.com" })).json();
    expect(intruder.returningGuest).toBe(true);
    // ... and must not leave a provider of theirs behind, which would outlive the upgrade
    // that ends the intruder's sessions and sign them in to the owner's full account.
    const refused = await linkTokenOf(intruder.accessToken);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: "forbidden" });
    expect((await linkTokenOf(owner.accessToken)).statusCode).toBe(403);
    const upgraded = await postAs("/auth/guest/upgrade", owner.accessToken, {
      email: "gwen@example.com",
      password: PASSWORD,
    });
    expect(upgraded.statusCode).toBe(200);
    expect((await me(upgraded.json().accessToken)).identities).toEqual([]);

    // A guest without an email is reached only through its own session: it may link.
    const solo = (await guest({ username: "solo" })).json();
    expect((await linkTokenOf(solo.accessToken)).statusCode).toBe(200);
  });

  it("refuses to unlink the last way to sign in (409)", async () => {
    await boot();
    await signIn(idpAccount("gina@example.com"));
    const access = accessCookie();
    // No password: step-up needs a second factor, so turn TOTP on.
    const setup = await app.http.inject({
      method: "POST",
      url: "/mfa/totp/setup",
      headers: bearer(access),
    });
    const { secret } = setup.json<{ secret: string }>();
    const enable = await postAs("/mfa/totp/enable", access, {
      code: totpAt(secret, app.clock.now()),
    });
    expect(enable.statusCode).toBe(200);
    app.clock.advance(30_000);
    const stepUp = await postAs("/auth/step-up", access, { code: totpAt(secret, app.clock.now()) });
    expect(stepUp.statusCode).toBe(200);
    const res = await app.http.inject({
      method: "DELETE",
      url: "/users/me/identities/idp",
      headers: {
        ...bearer(access),
        "x-step-up-token": stepUp.json<{ stepUpToken: string }>().stepUpToken,
      },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: "conflict" });
    expect((await me(access)).identities).toHaveLength(1);
  });

  it("sends an MFA user on with MFA pending instead of a session", async () => {
    await boot();
    const enrolled = await enrolledUser(app);
    const link = await app.http.inject({
      method: "POST",
      url: "/auth/oauth/link-token",
      headers: {
        ...bearer(enrolled.accessToken),
        "x-step-up-token": await stepUpToken(app, enrolled.accessToken),
      },
    });
    const sub = idpAccount("mfa-person@example.com", false);
    await signIn(sub, `?link=${link.json<{ linkToken: string }>().linkToken}&redirect=${SPA}`);

    const other = new Browser(app);
    browser = other;
    const page = await signIn(sub);
    expect(page.location?.searchParams.get("mfaRequired")).toBe("true");
    expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
    const mfaToken = browser.cookie("latchkey.test", "lk_mfa") as string;
    expect(decodeJwt(mfaToken)).toMatchObject({ typ: "mfa", sub: enrolled.userId, amr: ["fed"] });
    const finish = await app.http.inject({
      method: "POST",
      url: "/auth/login/mfa",
      headers: { "x-mfa-token": mfaToken, "content-type": "application/json" },
      payload: JSON.stringify({ code: totpAt(enrolled.secret, app.clock.now()) }),
    });
    expect(finish.statusCode, finish.body).toBe(200);
    expect(decodeJwt(finish.json<{ accessToken: string }>().accessToken).amr).toEqual([
      "fed",
      "otp",
    ]);
  });

  describe("in body delivery mode", () => {
    it("hands a one-time code that POST /auth/oauth/exchange turns into tokens once", async () => {
      await boot("body");
      const page = await signIn(idpAccount("hal@example.com"));
      expect(page.location?.origin).toBe(SPA);
      const code = page.location?.searchParams.get("code") as string;
      expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
      const exchange = () =>
        app.http.inject({
          method: "POST",
          url: "/auth/oauth/exchange",
          headers: { "user-agent": "a backend somewhere", "content-type": "application/json" },
          payload: JSON.stringify({ code }),
        });
      const first = await exchange();
      expect(first.statusCode).toBe(200);
      const tokens = first.json<{ accessToken: string; refreshToken: string; user: Me }>();
      expect(tokens.user).toMatchObject({ email: "hal@example.com" });
      expect(first.headers["set-cookie"]).toBeUndefined();
      const sessions = await app.http.inject({
        url: "/sessions",
        headers: bearer(tokens.accessToken),
      });
      expect(
        sessions.json<{ sessions: Array<{ userAgent: string }> }>().sessions[0]?.userAgent,
      ).toBe(USER_AGENT);
      const replay = await exchange();
      expect(replay.statusCode).toBe(400);
      expect(replay.json()).toMatchObject({ code: "invalid_code" });
    });

    it("exchanges a code sent many times at once exactly once", async () => {
      await boot("body");
      const page = await signIn(idpAccount("ida@example.com"));
      const code = page.location?.searchParams.get("code") as string;
      const answers = await Promise.all(
        Array.from({ length: 8 }, () =>
          app.http.inject({ method: "POST", url: "/auth/oauth/exchange", ...json({ code }) }),
        ),
      );
      expect(answers.map((a) => a.statusCode).sort()).toEqual([
        200, 400, 400, 400, 400, 400, 400, 400,
      ]);
      for (const loser of answers.filter((a) => a.statusCode === 400)) {
        expect(loser.json()).toMatchObject({ code: "invalid_code" });
      }
    });

    it("refuses a code handed before every session of the account ended", async () => {
      await boot("body");
      const exchange = (code: string | null | undefined) =>
        app.http.inject({ method: "POST", url: "/auth/oauth/exchange", ...json({ code }) });
      const first = await signIn(idpAccount("kim@example.com"));
      const { accessToken } = (await exchange(first.location?.searchParams.get("code"))).json<{
        accessToken: string;
      }>();
      const held = await signIn(idpAccount("kim@example.com"));
      const logoutAll = await app.http.inject({
        method: "POST",
        url: "/auth/logout/all",
        headers: bearer(accessToken),
      });
      expect(logoutAll.statusCode).toBe(204);
      const late = await exchange(held.location?.searchParams.get("code"));
      expect(late.json()).toMatchObject({ status: 400, code: "invalid_code" });
      // A code handed after it works.
      const fresh = await signIn(idpAccount("kim@example.com"));
      expect((await exchange(fresh.location?.searchParams.get("code"))).statusCode).toBe(200);
    });

    it("lets a code expire after 60 seconds, and gives MFA users MFA pending", async () => {
      await boot("body");
      const late = await signIn(idpAccount("ivy@example.com"));
      app.clock.advance(61_000);
      const expired = await app.http.inject({
        method: "POST",
        url: "/auth/oauth/exchange",
        ...json({ code: late.location?.searchParams.get("code") }),
      });
      expect(expired.statusCode).toBe(400);

      const enrolled = await enrolledUser(app);
      await markEmailVerified(enrolled.userId);
      browser = new Browser(app); // signed out at the IdP too
      const page = await signIn(idpAccount(enrolled.email));
      const res = await app.http.inject({
        method: "POST",
        url: "/auth/oauth/exchange",
        ...json({ code: page.location?.searchParams.get("code") }),
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ mfaRequired: true, mfaToken: expect.any(String) });
    });
  });

  describe("failure paths", () => {
    it("state mismatch: a callback for another flow than the cookie's", async () => {
      await boot();
      const sub = idpAccount("jack@example.com");
      const first = await start(browser, "idp", `?redirect=${SPA}`);
      await start(browser, "idp", `?redirect=${SPA}`); // replaces the cookie
      const page = await browser.get(await userAtIdp(browser, first, { account: sub }));
      expect(errorOf(page.location)).toBe("oauth_state_mismatch");
      expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
    });

    it("without the start cookie there is no redirect to trust: problem+json", async () => {
      await boot();
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      const callback = await userAtIdp(browser, authUrl, {
        account: idpAccount("kim@example.com"),
      });
      const res = await app.http.inject({ url: callback.pathname + callback.search });
      expect(res.statusCode).toBe(400);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({ code: "oauth_state_mismatch" });
    });

    it("nonce mismatch: an ID token minted for another authorization request", async () => {
      await boot();
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      authUrl.searchParams.set("nonce", "a-nonce-this-browser-never-sent");
      const page = await browser.get(
        await userAtIdp(browser, authUrl, { account: idpAccount("leo@example.com") }),
      );
      expect(errorOf(page.location)).toBe("oauth_failed");
      expect(browser.cookie("latchkey.test", "lk_access")).toBeUndefined();
      const db = await openAppDb(app);
      const users = await db.kysely.selectFrom("users").select("id").execute();
      await db.close();
      expect(users).toEqual([]);
    });

    it("an ID token with a bad signature, issuer, audience, expiry or nonce is oauth_failed", async () => {
      await boot();
      const now = () => Math.floor(Date.now() / 1000);
      const rewrites: Record<string, IdTokenRewrite> = {
        "signed by a key the provider never published": { signer: "stranger" },
        "another issuer": { claims: (c) => ({ ...c, iss: "http://127.0.0.1:1" }) },
        "another audience": { claims: (c) => ({ ...c, aud: "someone-else" }) },
        expired: { claims: (c) => ({ ...c, iat: now() - 3600, exp: now() - 600 }) },
        "another nonce": { claims: (c) => ({ ...c, nonce: "not-this-flows-nonce" }) },
        "no nonce": { claims: ({ nonce: _, ...c }) => c },
      };
      for (const [problem, rewrite] of Object.entries(rewrites)) {
        browser = new Browser(app);
        const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
        const callback = await userAtIdp(browser, authUrl, {
          account: idpAccount("forged@example.com"),
        });
        idp.idTokenRewrite = rewrite;
        const page = await browser.get(callback).finally(() => {
          idp.idTokenRewrite = undefined;
        });
        expect(errorOf(page.location), problem).toBe("oauth_failed");
        expect(browser.cookie("latchkey.test", "lk_access"), problem).toBeUndefined();
      }
      const db = await openAppDb(app);
      const users = await db.kysely.selectFrom("users").select("id").execute();
      await db.close();
      expect(users).toEqual([]);
      // The same rewrite with nothing changed passes: the checks above are what refused.
      browser = new Browser(app);
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      const callback = await userAtIdp(browser, authUrl, { account: idpAccount("ok@example.com") });
      idp.idTokenRewrite = {};
      const page = await browser.get(callback).finally(() => {
        idp.idTokenRewrite = undefined;
      });
      expect(page.location?.href).toBe(`${SPA}/`);
    });

    it("replayed code: neither the same callback again nor the code in a new flow works", async () => {
      await boot();
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      const sealed = browser.cookie("latchkey.test", "lk_oauth") as string;
      const callback = await userAtIdp(browser, authUrl, {
        account: idpAccount("max@example.com"),
      });
      expect((await browser.get(callback)).location?.href).toBe(`${SPA}/`);

      const attacker = new Browser(app);
      attacker.setCookie("latchkey.test", "lk_oauth", sealed, "/auth/oauth");
      const replay = await attacker.get(callback);
      expect(errorOf(replay.location)).toBe("oauth_state_mismatch");

      const next = await start(attacker, "idp", `?redirect=${SPA}`);
      const forged = new URL(callback);
      forged.searchParams.set("state", next.searchParams.get("state") as string);
      const swapped = await attacker.get(forged);
      expect(errorOf(swapped.location)).toBe("oauth_failed");
      expect(attacker.cookie("latchkey.test", "lk_access")).toBeUndefined();
    });

    it("a start cookie carried to another browser (another user agent) is oauth_state_mismatch", async () => {
      await boot();
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      const sealed = browser.cookie("latchkey.test", "lk_oauth") as string;
      const callback = await userAtIdp(browser, authUrl, {
        account: idpAccount("uma@example.com"),
      });
      for (const userAgent of ["curl/8.5.0", undefined]) {
        const elsewhere = await app.http.inject({
          url: callback.pathname + callback.search,
          headers: {
            cookie: `lk_oauth=${sealed}`,
            ...(userAgent ? { "user-agent": userAgent } : {}),
          },
        });
        expect(elsewhere.statusCode).toBe(302);
        expect(errorOf(new URL(elsewhere.headers.location as string))).toBe("oauth_state_mismatch");
        expect(elsewhere.headers["set-cookie"]).not.toEqual(
          expect.arrayContaining([expect.stringMatching(/^lk_(access|refresh)=[^;]/)]),
        );
      }
      // The browser that began the flow still finishes it.
      const page = await browser.get(callback);
      expect(page.location?.href).toBe(`${SPA}/`);
      expect(accessCookie()).toBeTruthy();
    });

    it("denied consent ends in oauth_denied", async () => {
      await boot();
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      const callback = await userAtIdp(browser, authUrl, {
        account: idpAccount("ned@example.com"),
        decline: true,
      });
      expect(callback.searchParams.get("error")).toBe("access_denied");
      const page = await browser.get(callback);
      expect(page.status).toBe(302);
      expect(errorOf(page.location)).toBe("oauth_denied");
    });

    it("an error without the flow's state is a forgery: oauth_state_mismatch", async () => {
      await boot();
      await start(browser, "idp", `?redirect=${SPA}`);
      const page = await browser.get(`${CALLBACK}?error=access_denied&state=forged`);
      expect(errorOf(page.location)).toBe("oauth_state_mismatch");
    });

    it("a malformed callback query goes back to the redirect as validation_failed, cookie cleared", async () => {
      await boot();
      const malformed = [
        (state: string) => `?code=a&code=b&state=${state}`,
        (state: string) => `?code=a&state=${state}&state=${state}`,
        (state: string) => `?code=${"a".repeat(4097)}&state=${state}`,
        (state: string) => `?code=a&state=${state}&error=x&error=y`,
      ];
      for (const query of malformed) {
        const authUrl = await start(browser, "idp", `?redirect=${SPA}/done`);
        const page = await browser.get(
          `${CALLBACK}${query(authUrl.searchParams.get("state") as string)}`,
        );
        expect(page.status).toBe(302);
        expect(`${page.location?.origin}${page.location?.pathname}`).toBe(`${SPA}/done`);
        expect(errorOf(page.location)).toBe("validation_failed");
        expect(
          page.setCookies.some((c) => /^lk_oauth=;.*Max-Age=0.*Path=\/auth\/oauth/.test(c)),
        ).toBe(true);
        expect(browser.cookie("latchkey.test", "lk_oauth")).toBeUndefined();
      }
      // No code and no error: the provider's answer is refused without a 400.
      const authUrl = await start(browser, "idp");
      const page = await browser.get(`${CALLBACK}?state=${authUrl.searchParams.get("state")}`);
      expect(page.location?.href).toBe(`${APP_ORIGIN}/ui/?error=oauth_failed`);
      expect(browser.cookie("latchkey.test", "lk_oauth")).toBeUndefined();
    });

    it("a malformed callback query without the start cookie stays a 400 validation_failed", async () => {
      await boot();
      const res = await app.http.inject({ url: "/auth/oauth/idp/callback?code=a&code=b&state=s" });
      expect(res.statusCode).toBe(400);
      expect(res.headers["content-type"]).toContain("application/problem+json");
      expect(res.json()).toMatchObject({
        code: "validation_failed",
        errors: [{ path: "code", message: "must be string" }],
      });
    });

    it("any other provider error is oauth_failed, never a 500", async () => {
      await boot();
      const authUrl = await start(browser, "idp", `?redirect=${SPA}`);
      const state = authUrl.searchParams.get("state") as string;
      const page = await browser.get(`${CALLBACK}?error=server_error&state=${state}`);
      expect(errorOf(page.location)).toBe("oauth_failed");
      const garbage = await start(browser, "idp", `?redirect=${SPA}`);
      const bad = await browser.get(
        `${CALLBACK}?code=nonsense&state=${garbage.searchParams.get("state")}`,
      );
      expect(errorOf(bad.location)).toBe("oauth_failed");
    });
  });
});
