import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFunctionConfig, once } from "../src/serverless/instance.js";

/**
 * The deployed entries, each in a fresh Node process as a platform would load them:
 * importing does no work, and the real `handler` builds its app from the environment
 * on the first invocation.
 */

const run = promisify(execFile);
const src = new URL("../src/", import.meta.url).pathname;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "latchkey-entry-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs an ES module script under tsx (TypeScript sources) with only `env` set. */
async function node(script: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "--eval", script],
    { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 30_000 },
  );
  return stdout;
}

describe("function entries", () => {
  it("import without doing any work: no database, no timers, the process just ends", async () => {
    const dataDir = join(dir, "untouched");
    const out = await node(
      `await import(${JSON.stringify(`${src}index.ts`)});
       await import(${JSON.stringify(`${src}serverless/lambda.ts`)});
       await import(${JSON.stringify(`${src}serverless/gcf-entry.ts`)});
       console.log("imported");`,
      { LATCHKEY_DATA_DIR: dataDir },
    );
    expect(out.trim()).toBe("imported");
    expect(existsSync(dataDir)).toBe(false);
  });

  it("the Lambda handler refuses an unmigrated database, then serves once it is migrated", async () => {
    const databaseUrl = `sqlite:${join(dir, "fn.db")}`;
    const event = {
      version: "2.0",
      routeKey: "$default",
      rawPath: "/readyz",
      rawQueryString: "",
      headers: { host: "fn.lambda-url.eu-west-1.on.aws" },
      requestContext: {
        http: { method: "GET", path: "/readyz", sourceIp: "198.51.100.1" },
        requestId: "r1",
        stage: "$default",
      },
      isBase64Encoded: false,
    };
    const out = await node(
      `const { handler } = await import(${JSON.stringify(`${src}serverless/lambda.ts`)});
       const { migrateToLatest, openDb } = await import(${JSON.stringify(`${src}store/db.ts`)});
       const event = ${JSON.stringify(event)};
       const first = await handler(event, {}).then((r) => r.statusCode, (e) => e.message);
       const db = await openDb(${JSON.stringify(databaseUrl)});
       await migrateToLatest(db); // the deploy step, \`latchkey migrate\`
       await db.close();
       const second = await handler(event, {});
       const docs = await handler({ ...event, rawPath: "/docs", requestContext: { ...event.requestContext, http: { ...event.requestContext.http, path: "/docs" } } }, {});
       const spec = await handler({ ...event, rawPath: "/openapi.json", requestContext: { ...event.requestContext, http: { ...event.requestContext.http, path: "/openapi.json" } } }, {});
       console.log(JSON.stringify({ first, second: second.statusCode, body: JSON.parse(second.body), docs: docs.statusCode, spec: spec.statusCode }));
       process.exit(0);`,
      { DATABASE_URL: databaseUrl, LATCHKEY_LOG_LEVEL: "silent" },
    );
    const result = JSON.parse(out);
    expect(result.first).toMatch(
      /^The database is missing migrations 0001_core, .*: run `latchkey migrate` before starting this version$/,
    );
    expect(result.second).toBe(200);
    expect(result.body).toMatchObject({ status: "ok", checks: { database: "ok" } });
    // Functions serve the OpenAPI document but not the browsable page.
    expect(result.spec).toBe(200);
    expect(result.docs).toBe(404);
  });
});

describe("function configuration", () => {
  it("a small PostgreSQL pool with a short idle timeout, unless the environment says otherwise", () => {
    expect(loadFunctionConfig({}).postgresPool).toEqual({
      max: 2,
      idleTimeoutMs: 5000,
      queryTimeoutMs: 15_000,
    });
    expect(
      loadFunctionConfig({ LATCHKEY_PG_POOL_MAX: "5", LATCHKEY_PG_IDLE_TIMEOUT_MS: "" })
        .postgresPool,
    ).toEqual({ max: 5, idleTimeoutMs: 5000, queryTimeoutMs: 15_000 });
  });

  it("builds once per instance, and tries again after a failed start", async () => {
    let builds = 0;
    const instance = once(async () => {
      builds++;
      if (builds === 1) throw new Error("database unreachable");
      return { n: builds };
    });
    await expect(instance()).rejects.toThrow("database unreachable");
    const [a, b] = await Promise.all([instance(), instance()]);
    expect(a).toBe(b);
    expect(await instance()).toBe(a);
    expect(builds).toBe(2);
  });
});
