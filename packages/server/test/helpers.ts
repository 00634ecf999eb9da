import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { vi } from "vitest";
import { createApp, type Latchkey } from "../src/app.js";
import { loadConfig } from "../src/config/load.js";
import type { ConfigInput } from "../src/config/schema.js";
import { ManualClock } from "../src/domain/clock.js";
import type { MailTransport } from "../src/mail/transport.js";
import { openDb } from "../src/store/db.js";
import {
  dropSchema,
  markShared,
  newSchemaName,
  PG_URL,
  releaseSchema,
  takeEmptiedSchema,
} from "./pg-schemas.js";
import { within } from "./ws-client.js";

/**
 * Which stack the suite runs on: SQLite with in-memory limits and fan-out (`npm test`),
 * or PostgreSQL with Redis (`LATCHKEY_TEST_DB=postgres`, `npm run test:pg`). CI runs both.
 */
export const TEST_DB = process.env.LATCHKEY_TEST_DB === "postgres" ? "postgres" : "sqlite";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export interface TestApp extends Latchkey {
  clock: ManualClock;
  /** Base URL once `listen()` was called. */
  url: string;
  listen(): Promise<string>;
}

type MailInput = ConfigInput["mail"];
type Overrides = Omit<
  Partial<ConfigInput>,
  "tokens" | "password" | "rateLimit" | "cookies" | "mail" | "links" | "operations" | "postgresPool"
> & {
  mail?: Partial<Omit<MailInput, "smtp" | "http">> & {
    smtp?: Partial<MailInput["smtp"]>;
    http?: Partial<MailInput["http"]>;
  };
  links?: Partial<ConfigInput["links"]>;
  operations?: Partial<ConfigInput["operations"]>;
  postgresPool?: Partial<ConfigInput["postgresPool"]>;
  tokens?: Partial<ConfigInput["tokens"]>;
  password?: Partial<ConfigInput["password"]>;
  rateLimit?: Partial<ConfigInput["rateLimit"]>;
  cookies?: Partial<ConfigInput["cookies"]>;
};

/**
 * A whole server on a fresh database of its own: a temporary SQLite file, or a
 * fresh schema in the PostgreSQL `test` database (the app creates it; an
 * unreachable server fails the test, never skips it). Argon2 runs at its cheapest
 * allowed parameters so the suite stays fast; the code path is the real one.
 */
export async function startTestApp(
  overrides: Overrides = {},
  options: { shareWith?: TestApp; mailTransport?: MailTransport; logger?: pino.Logger } = {},
): Promise<TestApp> {
  const clock = new ManualClock(Date.parse("2026-01-01T00:00:00Z"));
  const shared = options.shareWith?.svc.config;
  if (shared?.databaseSchema) markShared(shared.databaseSchema);
  // A second node of the same deployment: same database and Redis namespace; the first one drops them.
  const database = shared
    ? {
        url: shared.databaseUrl,
        schema: shared.databaseSchema,
        dataDir: shared.dataDir,
        drop: async () => {},
      }
    : await freshDatabase({ reuse: true });
  const config = loadConfig({}, {
    publicUrl: "http://latchkey.test",
    databaseUrl: database.url,
    databaseSchema: database.schema,
    dataDir: database.dataDir,
    ...(TEST_DB === "postgres"
      ? {
          redisUrl: REDIS_URL,
          redisKeyPrefix: shared?.redisKeyPrefix ?? `test-${randomBytes(6).toString("hex")}`,
        }
      : {}),
    ...overrides,
    password: { argon2MemoryKiB: 8192, argon2Iterations: 1, ...overrides.password },
  } as Partial<ConfigInput>);
  const latchkey = await createApp(config, {
    clock,
    logger: options.logger ?? pino({ level: "silent" }),
    mailTransport: options.mailTransport,
  }).catch(async (err: unknown) => {
    await database.drop();
    throw err;
  });
  const app: TestApp = {
    ...latchkey,
    clock,
    url: "",
    async listen() {
      app.url = await latchkey.http.listen({ host: "127.0.0.1", port: 0 });
      return app.url;
    },
    async close() {
      await latchkey.close();
      await database.drop();
    },
  };
  return app;
}

/**
 * A temporary directory (the data dir: SQLite file, dev mail outbox) and a database of its
 * own. With `reuse` (for a caller that migrates it to the latest schema, as an app's start
 * does), the PostgreSQL schema may be one an earlier app left, emptied, and `drop` leaves
 * it to the next one (pg-schemas.ts).
 */
export async function freshDatabase({ reuse = false } = {}): Promise<{
  url: string;
  schema?: string;
  dataDir: string;
  drop(): Promise<void>;
}> {
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-test-"));
  const removeDir = async () => rmSync(dataDir, { recursive: true, force: true });
  if (TEST_DB === "sqlite") {
    return { url: `sqlite:${join(dataDir, "test.db")}`, dataDir, drop: removeDir };
  }
  const schema = (reuse && (await takeEmptiedSchema())) || newSchemaName();
  return {
    url: PG_URL,
    schema,
    dataDir,
    drop: async () => {
      await (reuse ? releaseSchema(schema) : dropSchema(schema));
      await removeDir();
    },
  };
}

export const json = (body: unknown) => ({
  payload: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});

/** POSTs `body` as JSON, with more headers (a bearer, an origin) when given. */
export const postJson = (
  app: TestApp,
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  app.http.inject({
    method: "POST",
    url,
    headers: { ...headers, "content-type": "application/json" },
    payload: JSON.stringify(body),
  });

/** Registers a user over HTTP and returns the token response body. */
export async function registerUser(
  app: TestApp,
  body: { email?: string; password?: string; username?: string } = {},
): Promise<{ accessToken: string; refreshToken: string; user: { id: string; email: string } }> {
  const n = randomBytes(4).toString("hex");
  const res = await app.http.inject({
    method: "POST",
    url: "/auth/register",
    ...json({ email: `user-${n}@example.com`, password: "correct horse battery", ...body }),
  });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  return res.json();
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A direct connection to `app`'s database, for reading and arranging rows; close it after. */
export const openAppDb = async (app: TestApp) =>
  openDb(app.svc.config.databaseUrl, { schema: app.svc.config.databaseSchema });

/** An API token with the `introspect` scope, owned by a user of its own. */
export async function introspectionToken(app: TestApp): Promise<string> {
  const owner = await registerUser(app);
  const res = await app.http.inject({
    method: "POST",
    url: "/tokens",
    ...json({ name: "service", scopes: ["introspect"] }),
    headers: { "content-type": "application/json", ...bearer(owner.accessToken) },
  });
  if (res.statusCode !== 201) throw new Error(`token failed: ${res.statusCode} ${res.body}`);
  return res.json<{ token: string }>().token;
}

/** POST /auth/introspect of `token`, as the service holding the API token `service`. */
export const introspect = (app: TestApp, service: string, token: string) =>
  app.http.inject({
    method: "POST",
    url: "/auth/introspect",
    ...json({ token }),
    headers: { "content-type": "application/json", ...bearer(service) },
  });

/**
 * Raw bytes to `app` over a real socket (listening first if need be); the answer as text
 * once the server has closed the connection. A server that never closes it (a leaked
 * socket) fails the test.
 */
export async function rawRequest(app: TestApp, request: string): Promise<string> {
  const url = new URL(app.url || (await app.listen()));
  const socket = connect(Number(url.port), url.hostname);
  const chunks: Buffer[] = [];
  socket.on("data", (c) => chunks.push(c));
  socket.write(request);
  await within(once(socket, "close"), "close of the connection").finally(() => socket.destroy());
  return Buffer.concat(chunks).toString();
}

/** A raw answer's status line, head and JSON body. */
export function parseRaw(answer: string) {
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  return { statusLine: head.split("\r\n")[0], head, body: JSON.parse(body) };
}

/**
 * Pauses sign-ins inside their password check (the real verify runs, then waits for
 * `release`), so a test can change the account between a sign-in's read and its session.
 */
export function holdPasswordChecks(app: TestApp) {
  const verify = app.svc.hasher.verify.bind(app.svc.hasher);
  const entered = gate();
  const released = gate();
  const spy = vi.spyOn(app.svc.hasher, "verify").mockImplementation(async (hash, password) => {
    entered.open();
    const ok = await verify(hash, password);
    await released.passed;
    return ok;
  });
  return { checking: entered.passed, release: released.open, restore: () => spy.mockRestore() };
}

/**
 * Revokes every session of the user in a transaction held open until `commit()`: `written`
 * settles once the revocation is written and not yet committed, `done` once it committed.
 */
export function revocationHeldOpen(app: TestApp, userId: string) {
  const written = gate();
  const committing = gate();
  const done = app.svc.store.transaction(async (tx) => {
    await app.svc.sessions.revokeAllForUser(userId, "admin", undefined, tx);
    written.open();
    await committing.passed;
  });
  return { written: written.passed, commit: committing.open, done };
}

/** A promise one step of a test waits on (`passed`) until another step calls `open`. */
export function gate(): { passed: Promise<void>; open: () => void } {
  let open!: () => void;
  const passed = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { passed, open };
}
