import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { PG_CONNECT_TIMEOUT_MS } from "../../src/store/postgres.js";
import { json, startTestApp, type TestApp } from "../helpers.js";

/** Log lines as objects, from a real pino logger. */
function capturedLog() {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

// The pool's connect timeout bounds every request's wait for a connection (store/postgres.ts).
// Before it, a request that found every connection busy waited for ever; with the timeout
// alone, it would have been a bare 500 `internal_error`.
describe("a request that gets no PostgreSQL connection in time", () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("is answered 503 service_unavailable as problem+json, and logged", async () => {
    const { logger, lines } = capturedLog();
    app = await startTestApp({ postgresPool: { max: 1, idleTimeoutMs: 10_000 } }, { logger });
    const { http, svc } = app;
    const started = performance.now();
    // The pool's only connection stays busy for as long as the request takes.
    const res = await svc.store.transaction(() =>
      http.inject({
        method: "POST",
        url: "/auth/login",
        ...json({ identifier: "ada@example.com", password: "correct horse battery" }),
      }),
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(PG_CONNECT_TIMEOUT_MS - 100);
    expect(res.statusCode).toBe(503);
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 503, code: "service_unavailable" });
    expect(lines.filter((l) => l.msg === "no database connection")).toHaveLength(1);
  });
});
