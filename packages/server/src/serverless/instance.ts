import { createApp, type Latchkey } from "../app.js";
import { type Config, loadConfig } from "../config/load.js";
import { assertProductionReady } from "../config/production.js";

/**
 * A function instance serves one request at a time (Lambda) or a few (Cloud Run), and
 * hundreds of instances may share one PostgreSQL: two connections each (one for the
 * request, one for background writes), released after 5 s idle. Frozen instances keep
 * their sockets, so put RDS Proxy or PgBouncer in front of a busy database. The
 * hosted pages are not in the function bundle: serve them from a long-running node or
 * a CDN. The environment still overrides all of these.
 */
const FUNCTION_DEFAULTS: Record<string, string> = {
  LATCHKEY_PG_POOL_MAX: "2",
  LATCHKEY_PG_IDLE_TIMEOUT_MS: "5000",
  LATCHKEY_UI_ENABLED: "false",
};

export function loadFunctionConfig(env: Record<string, string | undefined>): Config {
  const merged = { ...FUNCTION_DEFAULTS };
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value !== "") merged[name] = value;
  }
  return loadConfig(merged);
}

/**
 * The app a deployed function serves, configured by its environment. No migrations
 * here: they are a deploy step (`latchkey migrate`), and an older schema is refused.
 * No /docs page either (/openapi.json stays): it would weigh on every cold start. No
 * GET /ws: a function's HTTP trigger cannot hold a WebSocket.
 */
export async function appFromEnvironment(): Promise<Latchkey> {
  const config = loadFunctionConfig(process.env);
  assertProductionReady(config, "function");
  return createApp(config, { migrate: false, docs: false, websocket: false });
}

/**
 * Builds on first use and keeps the result for the instance's life: config, keys and
 * the database pool load once per cold start. A failed start is not kept, so the next
 * invocation tries again (a database that was briefly unreachable).
 */
export function once<T>(build: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= build().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
