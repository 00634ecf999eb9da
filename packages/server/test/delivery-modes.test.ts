import type { LightMyRequestResponse } from "fastify";
import { decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { MailMessage } from "../src/mail/transport.js";
import { bearer, startTestApp, type TestApp } from "./helpers.js";
import { ORIGIN, PASSWORD, STEP_MS, totpAt } from "./mfa-helpers.js";
import { APP_ORIGIN, Browser, type Page } from "./oauth/browser.js";
import { start as startOAuth, userAtIdp } from "./oauth/flow.js";
import { startIdp, type TestIdp } from "./oauth/idp.js";
import { SoftAuthenticator } from "./webauthn-authenticator.js";
import { openSocket } from "./ws-client.js";

/**
 * Every route that issues or reissues tokens, in each delivery mode (API.md "Token
 * delivery"): which fields the body carries, which cookies are set and with which
 * attributes, and what logout clears. Credentials are sent as headers here (they work
 * in every mode); the cookie channel itself is delivery-and-csrf.test.ts's subject.
 */
type Mode = "both" | "cookie" | "body";
const MODES: Mode[] = ["both", "cookie", "body"];

/** What a route hands out. */
type Issued =
  | { kind: "pair"; status?: number; sessionExpiresIn: number; expiresIn?: number }
  | { kind: "access" }
  | { kind: "mfa" }
  | { kind: "stepUp" };

const WEEK = 7 * 24 * 3600;
const ACCESS_TTL = 900;
const MFA_TTL = 600;
const STEP_UP_TTL = 300;

type Overrides = Parameters<typeof startTestApp>[0];
let app: TestApp | undefined;
let sent: MailMessage[] = [];
afterEach(async () => {
  await app?.close();
  app = undefined;
  sent = [];
});

async function start(delivery: Mode, extra: Overrides = {}): Promise<TestApp> {
  app = await startTestApp(
    { ...extra, tokens: { delivery } },
    { mailTransport: { name: "capture", send: async (m) => void sent.push(m) } },
  );
  return app;
}

const post = (a: TestApp, url: string, body: unknown, headers: Record<string, string> = {}) =>
  a.http.inject({
    method: "POST",
    url,
    headers: { ...headers, "content-type": "application/json" },
    payload: JSON.stringify(body),
  });

const cookieOf = (res: LightMyRequestResponse, name: string) =>
  res.cookies.find((c) => c.name === name);

/** A token from whichever channel the mode used. */
function tokenOf(res: LightMyRequestResponse, field: string, cookie: string): string {
  const body = res.json<Record<string, unknown>>();
  const token = (body[field] as string | undefined) ?? cookieOf(res, cookie)?.value;
  if (!token) throw new Error(`no ${field} in ${res.statusCode} ${res.body}`);
  return token;
}
const accessOf = (res: LightMyRequestResponse) => tokenOf(res, "accessToken", "lk_access");
const refreshOf = (res: LightMyRequestResponse) => tokenOf(res, "refreshToken", "lk_refresh");

let n = 0;
async function signedUp(a: TestApp) {
  const email = `u${++n}@example.com`;
  const res = await post(a, "/auth/register", { email, password: PASSWORD });
  expect(res.statusCode).toBe(201);
  return { email, access: accessOf(res), refresh: refreshOf(res) };
}

async function stepUp(a: TestApp, access: string): Promise<string> {
  const res = await post(a, "/auth/step-up", { password: PASSWORD }, bearer(access));
  expect(res.statusCode).toBe(200);
  return tokenOf(res, "stepUpToken", "lk_step_up");
}

/** A user with TOTP on; signing in answers MFA pending. */
async function withTotp(a: TestApp) {
  const user = await signedUp(a);
  const setup = await post(a, "/mfa/totp/setup", {}, bearer(user.access));
  const { secret } = setup.json<{ secret: string }>();
  const enable = await post(
    a,
    "/mfa/totp/enable",
    { code: totpAt(secret, a.clock.now()) },
    bearer(user.access),
  );
  expect(enable.statusCode).toBe(200);
  a.clock.advance(STEP_MS);
  return { ...user, secret };
}

/** The cookies a response sets with a value (a cleared cookie has none). */
const setCookies = (res: LightMyRequestResponse) =>
  res.cookies.filter((c) => c.value !== "").map((c) => c.name);

const ATTRS = { httpOnly: true, secure: true };

function expectDelivered(res: LightMyRequestResponse, mode: Mode, issued: Issued) {
  const status = issued.kind === "pair" ? (issued.status ?? 200) : 200;
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers["cache-control"]).toBe("no-store");
  const body = res.json<Record<string, unknown>>();
  const inBody = mode !== "cookie";
  const inCookie = mode !== "body";
  const fields = {
    pair: ["accessToken", "refreshToken"],
    access: ["accessToken"],
    mfa: ["mfaToken"],
    stepUp: ["stepUpToken"],
  }[issued.kind];
  for (const field of fields) expect(body[field] !== undefined, field).toBe(inBody);
  const cookies = {
    pair: ["lk_access", "lk_refresh"],
    access: ["lk_access"],
    mfa: ["lk_mfa"],
    stepUp: ["lk_step_up"],
  }[issued.kind];
  expect(setCookies(res).sort()).toEqual(inCookie ? [...cookies].sort() : []);
  if (mode === "both") {
    for (const [i, field] of fields.entries()) {
      expect(cookieOf(res, cookies[i] as string)?.value).toBe(body[field]);
    }
  }
  // The JWT lives exactly as long as `expiresIn` says (and its cookie's Max-Age, below);
  // `{ user, accessToken }` has no expiresIn (API.md): the token lives its full 15 minutes.
  const jwt = decodeJwt(tokenOf(res, fields[0] as string, cookies[0] as string));
  const lifetime = issued.kind === "access" ? ACCESS_TTL : body.expiresIn;
  expect((jwt.exp as number) - (jwt.iat as number)).toBe(lifetime);
  switch (issued.kind) {
    case "pair": {
      const expiresIn = issued.expiresIn ?? ACCESS_TTL;
      expect(body).toMatchObject({
        user: expect.any(Object),
        expiresIn,
        sessionExpiresIn: issued.sessionExpiresIn,
        tokenType: "Bearer",
      });
      if (inCookie) {
        expect(cookieOf(res, "lk_access")).toMatchObject({
          ...ATTRS,
          sameSite: "Lax",
          path: "/",
          maxAge: expiresIn,
        });
        expect(cookieOf(res, "lk_refresh")).toMatchObject({
          ...ATTRS,
          sameSite: "Strict",
          path: "/auth",
          maxAge: issued.sessionExpiresIn,
        });
      }
      break;
    }
    case "access":
      expect(Object.keys(body).sort()).toEqual(inBody ? ["accessToken", "user"] : ["user"]);
      if (inCookie) {
        expect(cookieOf(res, "lk_access")).toMatchObject({
          ...ATTRS,
          sameSite: "Lax",
          path: "/",
          maxAge: ACCESS_TTL,
        });
      }
      break;
    case "mfa":
      expect(body).toMatchObject({ mfaRequired: true, expiresIn: MFA_TTL });
      if (inCookie) {
        expect(cookieOf(res, "lk_mfa")).toMatchObject({
          ...ATTRS,
          sameSite: "Lax",
          path: "/auth",
          maxAge: MFA_TTL,
        });
      }
      break;
    case "stepUp":
      expect(body).toMatchObject({ expiresIn: STEP_UP_TTL });
      if (inCookie) {
        expect(cookieOf(res, "lk_step_up")).toMatchObject({
          ...ATTRS,
          sameSite: "Lax",
          path: "/",
          maxAge: STEP_UP_TTL,
        });
      }
      break;
  }
}

const pair = (sessionExpiresIn = WEEK, status = 200, expiresIn = ACCESS_TTL): Issued => ({
  kind: "pair",
  status,
  sessionExpiresIn,
  expiresIn,
});

/** Each route that issues tokens: what it is asked, and what it should hand out. */
const ROUTES: Array<[string, (a: TestApp) => Promise<LightMyRequestResponse>, Issued]> = [
  [
    "POST /auth/setup",
    (a) => post(a, "/auth/setup", { username: "root", password: PASSWORD }),
    pair(WEEK, 201),
  ],
  [
    "POST /auth/register",
    (a) => post(a, "/auth/register", { email: "r@example.com", password: PASSWORD }),
    pair(WEEK, 201),
  ],
  [
    "POST /auth/login",
    async (a) => {
      const { email } = await signedUp(a);
      return post(a, "/auth/login", { identifier: email, password: PASSWORD });
    },
    pair(),
  ],
  [
    "POST /auth/login with rememberMe",
    async (a) => {
      const { email } = await signedUp(a);
      return post(a, "/auth/login", { identifier: email, password: PASSWORD, rememberMe: true });
    },
    pair(90 * 24 * 3600),
  ],
  [
    // A user's own sessionDurationMinutes (here shorter than an access token) sets both.
    "POST /auth/login with sessionDurationMinutes 10",
    async (a) => {
      const { email, access } = await signedUp(a);
      const patched = await a.http.inject({
        method: "PATCH",
        url: "/users/me",
        headers: { ...bearer(access), "content-type": "application/json" },
        payload: JSON.stringify({ sessionDurationMinutes: 10 }),
      });
      expect(patched.statusCode).toBe(200);
      return post(a, "/auth/login", { identifier: email, password: PASSWORD });
    },
    pair(600, 200, 600),
  ],
  [
    "POST /auth/login, MFA pending",
    async (a) => {
      const { email } = await withTotp(a);
      return post(a, "/auth/login", { identifier: email, password: PASSWORD });
    },
    { kind: "mfa" },
  ],
  [
    "POST /auth/login/mfa",
    async (a) => {
      const { email, secret } = await withTotp(a);
      const pending = await post(a, "/auth/login", { identifier: email, password: PASSWORD });
      const mfaToken = tokenOf(pending, "mfaToken", "lk_mfa");
      return post(
        a,
        "/auth/login/mfa",
        { code: totpAt(secret, a.clock.now()) },
        { "x-mfa-token": mfaToken },
      );
    },
    pair(),
  ],
  [
    "POST /auth/guest",
    (a) => post(a, "/auth/guest", { username: "Visitor" }),
    pair(50 * 3600, 201),
  ],
  [
    "POST /auth/guest/upgrade",
    async (a) => {
      const guest = await post(a, "/auth/guest", { username: "Visitor" });
      return post(
        a,
        "/auth/guest/upgrade",
        { email: "g@example.com", password: PASSWORD },
        bearer(accessOf(guest)),
      );
    },
    { kind: "access" },
  ],
  [
    "POST /auth/refresh with the token in the body",
    async (a) => post(a, "/auth/refresh", { refreshToken: (await signedUp(a)).refresh }),
    pair(),
  ],
  [
    "POST /auth/refresh with Bearer",
    async (a) =>
      a.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: bearer((await signedUp(a)).refresh),
      }),
    pair(),
  ],
  [
    // Accepted in every mode: the mode governs what the server hands out, not which
    // channel a client may present a token on (cookies left from an earlier mode work).
    "POST /auth/refresh with the lk_refresh cookie",
    async (a) =>
      a.http.inject({
        method: "POST",
        url: "/auth/refresh",
        headers: { cookie: `lk_refresh=${(await signedUp(a)).refresh}`, origin: ORIGIN },
      }),
    pair(),
  ],
  [
    // The cookies live as long as what they hold: the session's remaining life, and an
    // access token cut short by the session's end.
    "POST /auth/refresh a day into the session",
    async (a) => {
      const { refresh } = await signedUp(a);
      a.clock.advance(24 * 3600_000);
      return post(a, "/auth/refresh", { refreshToken: refresh });
    },
    pair(WEEK - 24 * 3600),
  ],
  [
    "POST /auth/refresh 100 s before the session ends",
    async (a) => {
      const { refresh } = await signedUp(a);
      a.clock.advance((WEEK - 100) * 1000);
      return post(a, "/auth/refresh", { refreshToken: refresh });
    },
    pair(100, 200, 100),
  ],
  [
    "POST /auth/magic-link/verify",
    async (a) => {
      const { email } = await signedUp(a);
      expect((await post(a, "/auth/magic-link", { email })).statusCode).toBe(202);
      await a.svc.mailer.flush();
      const link = sent.find((m) => m.to === email && m.subject.includes("sign-in"))?.link;
      const token = new URL(link as string).searchParams.get("token");
      return post(a, "/auth/magic-link/verify", { token });
    },
    pair(),
  ],
  [
    "POST /auth/magic-link/verify, MFA pending",
    async (a) => {
      const { email } = await withTotp(a);
      await post(a, "/auth/magic-link", { email });
      await a.svc.mailer.flush();
      const link = sent.find((m) => m.to === email && m.subject.includes("sign-in"))?.link;
      const token = new URL(link as string).searchParams.get("token");
      return post(a, "/auth/magic-link/verify", { token });
    },
    { kind: "mfa" },
  ],
  [
    "POST /auth/step-up",
    async (a) =>
      post(a, "/auth/step-up", { password: PASSWORD }, bearer((await signedUp(a)).access)),
    { kind: "stepUp" },
  ],
  [
    "POST /auth/password/change",
    async (a) => {
      const { access } = await signedUp(a);
      return post(
        a,
        "/auth/password/change",
        { currentPassword: PASSWORD, newPassword: "another long passphrase" },
        { ...bearer(access), "x-step-up-token": await stepUp(a, access) },
      );
    },
    pair(),
  ],
  [
    "POST /auth/unlock",
    async (a) => {
      const { access } = await signedUp(a);
      expect(
        (await a.http.inject({ method: "POST", url: "/sessions/lock", headers: bearer(access) }))
          .statusCode,
      ).toBe(204);
      a.clock.advance(1000);
      return post(a, "/auth/unlock", { password: PASSWORD }, bearer(access));
    },
    pair(WEEK - 1),
  ],
  [
    "PATCH /users/me",
    async (a) =>
      a.http.inject({
        method: "PATCH",
        url: "/users/me",
        headers: { ...bearer((await signedUp(a)).access), "content-type": "application/json" },
        payload: JSON.stringify({ username: "renamed" }),
      }),
    { kind: "access" },
  ],
  [
    "POST /auth/webauthn/verify",
    async (a) => {
      const { access } = await signedUp(a);
      const authenticator = new SoftAuthenticator({ origin: ORIGIN });
      const reg = (await post(a, "/webauthn/register/options", {}, bearer(access))).json();
      const registered = await post(
        a,
        "/webauthn/register/verify",
        { challengeId: reg.challengeId, response: authenticator.register(reg.options) },
        bearer(access),
      );
      expect(registered.statusCode).toBe(201);
      const login = (await post(a, "/auth/webauthn/options", {})).json();
      return post(a, "/auth/webauthn/verify", {
        challengeId: login.challengeId,
        response: authenticator.assert(login.options),
      });
    },
    pair(),
  ],
];

describe.each(MODES)("delivery %s", (mode) => {
  it.each(ROUTES)("%s", async (_route, call, issued) => {
    expectDelivered(await call(await start(mode)), mode, issued);
  });

  /** Each clear repeats the Path it was set with, or the browser keeps the cookie. */
  const CLEARED = [
    ["lk_access", "/"],
    ["lk_refresh", "/auth"],
    ["lk_step_up", "/"],
  ];

  type End = (a: TestApp, access: string) => Promise<LightMyRequestResponse>;
  const ENDS: Array<[string, End]> = [
    ["POST /auth/logout", (a, access) => post(a, "/auth/logout", {}, bearer(access))],
    ["POST /auth/logout/all", (a, access) => post(a, "/auth/logout/all", {}, bearer(access))],
    [
      "DELETE /sessions/:id of this session",
      async (a, access) => {
        const list = await a.http.inject({ url: "/sessions", headers: bearer(access) });
        const id = list.json<{ sessions: Array<{ id: string }> }>().sessions[0]?.id;
        return a.http.inject({ method: "DELETE", url: `/sessions/${id}`, headers: bearer(access) });
      },
    ],
    [
      "DELETE /users/me",
      async (a, access) =>
        a.http.inject({
          method: "DELETE",
          url: "/users/me",
          headers: { ...bearer(access), "x-step-up-token": await stepUp(a, access) },
        }),
    ],
  ];

  it.each(ENDS)("%s clears the session's cookies", async (_route, end) => {
    const a = await start(mode);
    const { access } = await signedUp(a);
    const res = await end(a, access);
    expect(res.statusCode, res.body).toBe(204);
    // Also in body mode: cookies a browser kept from an earlier mode go with the session.
    for (const [name, path] of CLEARED) {
      expect(cookieOf(res, name as string), name).toMatchObject({ value: "", path, ...ATTRS });
    }
    expect(setCookies(res)).toEqual([]);
  });
});

/** The OAuth callback hands tokens through a redirect: cookies, or a one-time code in `body` mode. */
describe("the OAuth callback", () => {
  const SPA = "http://spa.test";
  let idp: TestIdp;
  beforeAll(async () => {
    idp = await startIdp([`${APP_ORIGIN}/auth/oauth/idp/callback`]);
  });
  afterAll(() => idp.close());

  const boot = (mode: Mode) =>
    start(mode, {
      allowedOrigins: [APP_ORIGIN, SPA],
      oauth: {
        providers: [
          {
            id: "idp",
            name: "Test IdP",
            type: "oidc",
            issuer: idp.issuer,
            clientId: idp.clientId,
            clientSecret: idp.clientSecret,
            storeTokens: false,
          },
        ],
      },
    });

  /** A federated sign-in round trip in a fresh browser; the callback's answer. */
  async function signIn(a: TestApp, sub: string, query = `?redirect=${SPA}/done`) {
    const browser = new Browser(a);
    return browser.get(
      await userAtIdp(browser, await startOAuth(browser, "idp", query), { account: sub }),
    );
  }

  /** `name=value` and the lower-cased attributes of each Set-Cookie line with a value. */
  const cookiesSet = (page: Page) =>
    new Map(
      page.setCookies
        .map((line) => line.split(";").map((part) => part.trim()))
        .filter(([pair = ""]) => !pair.endsWith("="))
        .map(([pair = "", ...attrs]) => [
          pair.split("=")[0],
          attrs.map((x) => x.toLowerCase()).sort(),
        ]),
    );

  /** An IdP account linked to a local user with TOTP on. */
  async function mfaSub(a: TestApp): Promise<string> {
    const user = await withTotp(a);
    const link = await post(
      a,
      "/auth/oauth/link-token",
      {},
      {
        ...bearer(user.access),
        "x-step-up-token": await stepUp(a, user.access),
      },
    );
    const sub = `mfa-${++n}`;
    idp.accounts.set(sub, { email: `idp-${n}@example.com`, emailVerified: false });
    const linked = await signIn(a, sub, `?link=${link.json().linkToken}&redirect=${SPA}/done`);
    expect(linked.location?.searchParams.get("linked")).toBe("idp");
    return sub;
  }

  const queryKeys = (page: Page) => [...(page.location?.searchParams.keys() ?? [])];

  const exchange = (a: TestApp, page: Page) =>
    post(a, "/auth/oauth/exchange", { code: page.location?.searchParams.get("code") });

  const plainSub = () => {
    const sub = `plain-${++n}`;
    idp.accounts.set(sub, { email: `plain-${n}@example.com`, emailVerified: true });
    return sub;
  };

  it.each(["both", "cookie"] as const)(
    "%s: sets the session cookies and redirects",
    async (mode) => {
      const a = await boot(mode);
      const page = await signIn(a, plainSub());
      expect(page.status).toBe(302);
      expect(page.location?.href).toBe(`${SPA}/done`);
      const cookies = cookiesSet(page);
      expect([...cookies.keys()].sort()).toEqual(["lk_access", "lk_refresh"]);
      expect(cookies.get("lk_access")).toEqual([
        "httponly",
        "max-age=900",
        "path=/",
        "samesite=lax",
        "secure",
      ]);
      expect(cookies.get("lk_refresh")).toEqual([
        "httponly",
        `max-age=${WEEK}`,
        "path=/auth",
        "samesite=strict",
        "secure",
      ]);
    },
  );

  it.each(["both", "cookie"] as const)(
    "%s: MFA pending goes in lk_mfa, never in the URL",
    async (mode) => {
      const a = await boot(mode);
      const page = await signIn(a, await mfaSub(a));
      expect(page.status).toBe(302);
      expect(queryKeys(page)).toEqual(["mfaRequired"]);
      const cookies = cookiesSet(page);
      expect([...cookies.keys()]).toEqual(["lk_mfa"]);
      expect(cookies.get("lk_mfa")).toEqual([
        "httponly",
        `max-age=${MFA_TTL}`,
        "path=/auth",
        "samesite=lax",
        "secure",
      ]);
    },
  );

  it("body: a one-time code, no cookie; the exchange answers in the body", async () => {
    const a = await boot("body");
    const page = await signIn(a, plainSub());
    expect(queryKeys(page)).toEqual(["code"]);
    expect(cookiesSet(page).size).toBe(0);
    expectDelivered(await exchange(a, page), "body", pair());
  });

  it("body: an MFA user's code is exchanged for MFA pending, in the body", async () => {
    const a = await boot("body");
    const page = await signIn(a, await mfaSub(a));
    expect(queryKeys(page)).toEqual(["code"]);
    expect(cookiesSet(page).size).toBe(0);
    expectDelivered(await exchange(a, page), "body", { kind: "mfa" });
  });
});

/**
 * WebSocket messages answer the socket's own credential, whatever the mode: a socket on the
 * lk_access cookie never sees a token (it would hand an HttpOnly token to scripts); one that
 * presented a refresh token gets the rotated pair back (ws.test.ts), or its session is lost.
 */
it("cookie: a socket on the lk_access cookie gets no token in its messages", async () => {
  const a = await start("cookie");
  const { access } = await signedUp(a);
  const client = await openSocket(await a.listen(), {
    headers: { cookie: `lk_access=${access}`, origin: ORIGIN },
  });
  const hello = await client.next();
  expect(Object.keys(hello).sort()).toEqual(["sessionId", "type", "userId"]);
  client.ws.close();
});

it("cookie: a socket that sent a refresh token gets the rotated pair, which works", async () => {
  const a = await start("cookie");
  const { refresh } = await signedUp(a);
  const client = await openSocket(await a.listen());
  client.send({ type: "auth", refreshToken: refresh });
  const hello = await client.next();
  expect(hello).toMatchObject({ type: "authenticated", expiresIn: ACCESS_TTL });
  client.ws.close();
  const next = await post(a, "/auth/refresh", { refreshToken: hello.refreshToken });
  expect(next.statusCode).toBe(200);
});

/** Secure off for plain-HTTP development, and a Domain: every cookie set or cleared follows. */
describe("cookie options", () => {
  it.each(ROUTES)("%s", async (_route, call) => {
    const a = await start("both", { cookies: { secure: false, domain: "latchkey.test" } });
    const res = await call(a);
    expect(res.statusCode).toBeLessThan(300);
    for (const cookie of res.cookies) {
      expect(cookie, cookie.name).toMatchObject({ domain: "latchkey.test", httpOnly: true });
      expect(cookie.secure, cookie.name).toBeFalsy();
    }
  });

  it("POST /auth/logout clears with the same Domain", async () => {
    const a = await start("both", { cookies: { secure: false, domain: "latchkey.test" } });
    const { access } = await signedUp(a);
    const res = await a.http.inject({
      method: "POST",
      url: "/auth/logout",
      headers: bearer(access),
    });
    expect(res.cookies.map((c) => [c.name, c.value, c.domain])).toEqual([
      ["lk_access", "", "latchkey.test"],
      ["lk_refresh", "", "latchkey.test"],
      ["lk_step_up", "", "latchkey.test"],
    ]);
  });
});

/** A browser's cookie jar (Path honoured): what a page in `cookie` mode has to work with. */
class Jar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  take(res: LightMyRequestResponse): LightMyRequestResponse {
    for (const c of res.cookies) {
      if (c.value === "" || (c.maxAge ?? 1) <= 0) this.cookies.delete(c.name);
      else this.cookies.set(c.name, { value: c.value, path: c.path ?? "/" });
    }
    return res;
  }

  names = () => [...this.cookies.keys()].sort();

  /** A same-origin page's fetch with `credentials: "include"`. */
  async post(a: TestApp, url: string, body: unknown = {}) {
    const cookie = [...this.cookies]
      .filter(([, c]) => url.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
    return this.take(
      await a.http.inject({
        method: "POST",
        url,
        headers: { cookie, origin: ORIGIN, "content-type": "application/json" },
        payload: JSON.stringify(body),
      }),
    );
  }
}

it("cookie: a page that never sees a token signs in with MFA, steps up, changes the password and logs out", async () => {
  const a = await start("cookie");
  const { email, secret } = await withTotp(a);
  const jar = new Jar();
  const pending = await jar.post(a, "/auth/login", { identifier: email, password: PASSWORD });
  expect(pending.json()).toEqual({ mfaRequired: true, expiresIn: MFA_TTL });
  expect(jar.names()).toEqual(["lk_mfa"]);
  const signedIn = await jar.post(a, "/auth/login/mfa", { code: totpAt(secret, a.clock.now()) });
  expect(signedIn.statusCode).toBe(200);
  expect(jar.names()).toEqual(["lk_access", "lk_refresh"]);
  const grant = await jar.post(a, "/auth/step-up", { password: PASSWORD });
  expect(grant.json()).toEqual({ expiresIn: STEP_UP_TTL });
  const changed = await jar.post(a, "/auth/password/change", {
    currentPassword: PASSWORD,
    newPassword: "another long passphrase",
  });
  expect(changed.statusCode, changed.body).toBe(200);
  expect(JSON.stringify(changed.json())).not.toMatch(/Token"/);
  expect((await jar.post(a, "/auth/refresh")).statusCode).toBe(200);
  expect(jar.names()).toEqual(["lk_access", "lk_refresh", "lk_step_up"]);
  expect((await jar.post(a, "/auth/logout")).statusCode).toBe(204);
  expect(jar.names()).toEqual([]);
});
