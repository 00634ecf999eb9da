import { randomBytes, randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { http } from "@google-cloud/functions-framework";
import { getTestServer } from "@google-cloud/functions-framework/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFunctionHandler } from "../src/serverless/gcf.js";
import { createLambdaHandler } from "../src/serverless/lambda.js";
import { startTestApp, type TestApp } from "./helpers.js";

/**
 * The register -> login -> users/me -> refresh -> logout journey of a browser (cookies
 * only, Origin on every POST), through each serverless adapter. Every response's
 * Set-Cookie headers are checked one by one: the adapters must keep all of them.
 */

const ORIGIN = "http://latchkey.test"; // startTestApp's publicUrl: the default allowed origin
const PASSWORD = "correct horse battery";
const SPOOFED_IP = "203.0.113.66";

interface Call {
  method: "GET" | "POST";
  path: string;
  headers: Record<string, string>;
  cookies: string[]; // name=value pairs the browser sends
  body?: string;
}
interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  setCookies: string[];
}
type Transport = (call: Call) => Promise<Answer>;

// Event shapes as AWS documents them (payload format 1.0 and 2.0; function URLs use 2.0).
function restApiEvent(call: Call, sourceIp: string) {
  const headers: Record<string, string> = {
    Host: "abc123.execute-api.eu-west-1.amazonaws.com",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
    "X-Forwarded-For": `${SPOOFED_IP}, ${sourceIp}`,
    "X-Forwarded-Proto": "https",
    ...call.headers,
    ...(call.cookies.length > 0 ? { Cookie: call.cookies.join("; ") } : {}),
  };
  return {
    resource: "/{proxy+}",
    path: call.path,
    httpMethod: call.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: call.path.slice(1) },
    stageVariables: null,
    requestContext: {
      resourceId: "2gxmpl",
      resourcePath: "/{proxy+}",
      httpMethod: call.method,
      extendedRequestId: "JJbxmplHYosFVYQ=",
      requestTime: "10/Mar/2026:00:03:59 +0000",
      path: `/prod${call.path}`,
      accountId: "123456789012",
      protocol: "HTTP/1.1",
      stage: "prod",
      domainPrefix: "abc123",
      requestTimeEpoch: 1_773_100_239_000,
      requestId: randomUUID(),
      identity: { sourceIp, userAgent: headers["User-Agent"], accessKey: null, user: null },
      domainName: "abc123.execute-api.eu-west-1.amazonaws.com",
      apiId: "abc123",
    },
    body: call.body ?? null,
    isBase64Encoded: false,
  };
}

function httpApiEvent(call: Call, sourceIp: string, opts: { functionUrl?: boolean } = {}) {
  const domainName = opts.functionUrl
    ? "kx2mplq7vu4.lambda-url.eu-west-1.on.aws"
    : "def456.execute-api.eu-west-1.amazonaws.com";
  const headers = Object.fromEntries(
    Object.entries({
      host: domainName,
      "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0",
      "x-forwarded-for": `${SPOOFED_IP}, ${sourceIp}`,
      "x-forwarded-proto": "https",
      ...call.headers,
    }).map(([k, v]) => [k.toLowerCase(), v]),
  );
  // Function URLs base64-encode bodies; HTTP APIs pass text as it is.
  const base64 = opts.functionUrl === true && call.body !== undefined;
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: call.path,
    rawQueryString: "",
    ...(call.cookies.length > 0 ? { cookies: call.cookies } : {}),
    headers,
    requestContext: {
      accountId: opts.functionUrl ? "anonymous" : "123456789012",
      apiId: domainName.split(".")[0],
      domainName,
      domainPrefix: domainName.split(".")[0],
      http: {
        method: call.method,
        path: call.path,
        protocol: "HTTP/1.1",
        sourceIp,
        userAgent: headers["user-agent"],
      },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: "10/Mar/2026:00:03:59 +0000",
      timeEpoch: 1_773_100_239_000,
    },
    ...(call.body !== undefined
      ? { body: base64 ? Buffer.from(call.body).toString("base64") : call.body }
      : {}),
    isBase64Encoded: base64,
  };
}

const lambdaContext = () => ({
  functionName: "latchkey",
  awsRequestId: randomUUID(),
  getRemainingTimeInMillis: () => 29_000,
});

type LambdaResult = Awaited<ReturnType<ReturnType<typeof createLambdaHandler>>> & {
  multiValueHeaders?: Record<string, string[]>;
};

function lambdaTransport(
  handler: ReturnType<typeof createLambdaHandler>,
  toEvent: (call: Call) => unknown,
  format: "1.0" | "2.0",
): Transport {
  return async (call) => {
    const res = (await handler(toEvent(call), lambdaContext())) as LambdaResult;
    // Payload 1.0 carries several cookies in multiValueHeaders, 2.0 in `cookies`; a lone
    // cookie on 1.0 may stay a plain header. Nothing else may hold one.
    const setCookies =
      format === "2.0"
        ? (res.cookies ?? [])
        : (res.multiValueHeaders?.["set-cookie"] ?? [res.headers["set-cookie"]].filter(Boolean));
    if (format === "2.0") expect(res.headers).not.toHaveProperty("set-cookie");
    if (format === "2.0") expect(res).not.toHaveProperty("multiValueHeaders");
    const body = res.isBase64Encoded ? Buffer.from(res.body, "base64").toString() : res.body;
    return {
      status: res.statusCode,
      headers: res.headers,
      body,
      setCookies: setCookies as string[],
    };
  };
}

function fetchTransport(base: () => string): Transport {
  return async (call) => {
    const res = await fetch(base() + call.path, {
      method: call.method,
      headers: {
        ...call.headers,
        "x-forwarded-for": SPOOFED_IP,
        ...(call.cookies.length > 0 ? { cookie: call.cookies.join("; ") } : {}),
      },
      ...(call.body !== undefined ? { body: call.body } : {}),
    });
    return {
      status: res.status,
      headers: Object.fromEntries(res.headers),
      body: await res.text(),
      setCookies: res.headers.getSetCookie(),
    };
  };
}

interface SetCookie {
  name: string;
  value: string;
  attributes: Record<string, string | true>;
}

function parseSetCookie(header: string): SetCookie {
  const [pair = "", ...attrs] = header.split(";").map((s) => s.trim());
  const eq = pair.indexOf("=");
  return {
    name: pair.slice(0, eq),
    value: decodeURIComponent(pair.slice(eq + 1)),
    attributes: Object.fromEntries(
      attrs.map((a) => {
        const i = a.indexOf("=");
        return i < 0 ? [a.toLowerCase(), true] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)];
      }),
    ),
  };
}

/** The two token cookies a sign-in or refresh sets, with the contract's attributes. */
function expectTokenCookies(
  setCookies: string[],
  body: { accessToken: string; refreshToken: string; sessionExpiresIn: number },
): void {
  const cookies = setCookies.map(parseSetCookie);
  expect(cookies.map((c) => c.name).sort()).toEqual(["lk_access", "lk_refresh"]);
  const byName = new Map(cookies.map((c) => [c.name, c]));
  expect(byName.get("lk_access")).toEqual({
    name: "lk_access",
    value: body.accessToken,
    attributes: { "max-age": "900", path: "/", httponly: true, secure: true, samesite: "Lax" },
  });
  expect(byName.get("lk_refresh")).toEqual({
    name: "lk_refresh",
    value: body.refreshToken,
    attributes: {
      "max-age": String(body.sessionExpiresIn),
      path: "/auth",
      httponly: true,
      secure: true,
      samesite: "Strict",
    },
  });
}

/** A browser: keeps cookies by name and sends each only under its Path. */
class Browser {
  private readonly jar = new Map<string, { value: string; path: string }>();
  constructor(private readonly transport: Transport) {}

  async send(method: Call["method"], path: string, body?: unknown): Promise<Answer> {
    const cookies = [...this.jar]
      .filter(([, c]) => path === c.path || path.startsWith(c.path === "/" ? "/" : `${c.path}/`))
      .map(([name, c]) => `${name}=${c.value}`);
    const answer = await this.transport({
      method,
      path,
      cookies,
      headers: {
        ...(method === "POST" ? { origin: ORIGIN } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    for (const c of answer.setCookies.map(parseSetCookie)) {
      if (c.attributes["max-age"] === "0") this.jar.delete(c.name);
      else this.jar.set(c.name, { value: c.value, path: String(c.attributes.path ?? "/") });
    }
    return answer;
  }

  has(name: string): boolean {
    return this.jar.has(name);
  }
}

async function journey(app: TestApp, transport: Transport, clientIp: string): Promise<void> {
  const email = `fn-${randomBytes(4).toString("hex")}@example.com`;
  const browser = new Browser(transport);

  const registered = await browser.send("POST", "/auth/register", { email, password: PASSWORD });
  expect(registered.status).toBe(201);
  const reg = JSON.parse(registered.body);
  expect(reg).toMatchObject({ user: { email }, expiresIn: 900, tokenType: "Bearer" });
  expect(reg.sessionExpiresIn).toBe(604_800);
  expectTokenCookies(registered.setCookies, reg);

  const login = await browser.send("POST", "/auth/login", {
    identifier: email,
    password: PASSWORD,
  });
  expect(login.status).toBe(200);
  expect(login.headers["content-type"]).toMatch(/^application\/json/);
  const tokens = JSON.parse(login.body);
  expect(tokens.user).toEqual(reg.user);
  expectTokenCookies(login.setCookies, tokens);

  const me = await browser.send("GET", "/users/me");
  expect(me.status).toBe(200);
  expect(JSON.parse(me.body)).toEqual(reg.user);
  expect(me.setCookies).toEqual([]);

  // The session records the client's address from the platform, not a forged header.
  const sessions = await browser.send("GET", "/sessions");
  expect(sessions.status).toBe(200);
  const current = JSON.parse(sessions.body).sessions.find((s: { current: boolean }) => s.current);
  expect(current.ip).toBe(clientIp);

  app.clock.advance(60_000);
  const refreshed = await browser.send("POST", "/auth/refresh");
  expect(refreshed.status).toBe(200);
  const rotated = JSON.parse(refreshed.body);
  expect(rotated.refreshToken).not.toBe(tokens.refreshToken);
  expect(rotated.accessToken).not.toBe(tokens.accessToken);
  expect(rotated.sessionExpiresIn).toBe(tokens.sessionExpiresIn - 60);
  expectTokenCookies(refreshed.setCookies, rotated);

  const meAgain = await browser.send("GET", "/users/me");
  expect(meAgain.status).toBe(200);

  const logout = await browser.send("POST", "/auth/logout");
  expect(logout.status).toBe(204);
  expect(logout.body).toBe("");
  const cleared = logout.setCookies.map(parseSetCookie);
  expect(cleared.map((c) => c.name).sort()).toEqual(["lk_access", "lk_refresh", "lk_step_up"]);
  for (const c of cleared) {
    expect(c.value).toBe("");
    expect(c.attributes).toMatchObject({ "max-age": "0", httponly: true, secure: true });
  }
  expect(browser.has("lk_access") || browser.has("lk_refresh")).toBe(false);

  // The session is over: the old refresh token and the old access token are both refused.
  const stale = await transport({
    method: "POST",
    path: "/auth/refresh",
    cookies: [`lk_refresh=${rotated.refreshToken}`],
    headers: { origin: ORIGIN },
  });
  expect(stale.status).toBe(401);
  expect(stale.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const afterLogout = await transport({
    method: "GET",
    path: "/users/me",
    cookies: [],
    headers: { authorization: `Bearer ${rotated.accessToken}` },
  });
  expect(afterLogout.status).toBe(401);
  expect(JSON.parse(afterLogout.body)).toMatchObject({ code: "session_revoked" });
}

describe("AWS Lambda handler", () => {
  let app: TestApp;
  let handler: ReturnType<typeof createLambdaHandler>;
  beforeAll(async () => {
    app = await startTestApp();
    handler = createLambdaHandler(async () => app);
  });
  afterAll(() => app.close());

  it("API Gateway REST API (payload 1.0): the whole journey", async () => {
    const ip = "198.51.100.10";
    await journey(
      app,
      lambdaTransport(handler, (c) => restApiEvent(c, ip), "1.0"),
      ip,
    );
  });

  it("API Gateway HTTP API (payload 2.0): the whole journey", async () => {
    const ip = "198.51.100.20";
    await journey(
      app,
      lambdaTransport(handler, (c) => httpApiEvent(c, ip), "2.0"),
      ip,
    );
  });

  it("function URL (payload 2.0, base64 bodies): the whole journey", async () => {
    const ip = "2001:db8::30";
    const toEvent = (c: Call) => httpApiEvent(c, ip, { functionUrl: true });
    await journey(app, lambdaTransport(handler, toEvent, "2.0"), ip);
  });

  it("answers bad input with problem+json, as the server does", async () => {
    const call: Call = {
      method: "POST",
      path: "/auth/login",
      headers: { "content-type": "application/json" },
      cookies: [],
      body: '{"identifier":',
    };
    const res = await handler(httpApiEvent(call, "198.51.100.40"), lambdaContext());
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.body)).toMatchObject({ status: 400, code: "validation_failed" });
  });

  it("keeps a comma in a query value as one value", async () => {
    const call: Call = { method: "GET", path: "/nowhere", headers: {}, cookies: [] };
    const event = { ...httpApiEvent(call, "198.51.100.50"), queryStringParameters: { a: "x,y" } };
    const res = await handler(event, lambdaContext());
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body).detail).toBe("No route for GET /nowhere");
  });

  it("writes the request's audit events before the invocation ends", async () => {
    const call: Call = {
      method: "POST",
      path: "/auth/register",
      headers: { "content-type": "application/json" },
      cookies: [],
      body: JSON.stringify({ email: "audited@example.com", password: PASSWORD }),
    };
    const res = await handler(httpApiEvent(call, "198.51.100.60"), lambdaContext());
    expect(res.statusCode).toBe(201);
    const userId = JSON.parse(res.body).user.id as string;
    // Read at once, before the 50 ms batch timer could have fired.
    const events = await app.svc.store.audit.listForUser(userId);
    expect(events.map((e) => e.type)).toContain("register");
  });
});

describe("Google Cloud Functions (Functions Framework on loopback)", () => {
  let app: TestApp;
  let server: Server;
  let base = "";
  beforeAll(async () => {
    app = await startTestApp();
    const name = `latchkey-test-${randomBytes(4).toString("hex")}`;
    http(
      name,
      createFunctionHandler(async () => app),
    );
    server = getTestServer(name);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await app.close();
  });

  it("the whole journey, with the socket peer as the client IP", async () => {
    await journey(
      app,
      fetchTransport(() => base),
      "127.0.0.1",
    );
  });

  it("applies Latchkey's own body limit and error format to the raw body", async () => {
    const res = await fetch(`${base}/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ identifier: "x".repeat(70_000), password: PASSWORD }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: "payload_too_large" });
  });
});
