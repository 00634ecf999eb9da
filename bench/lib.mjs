// What the load scripts share: the server's Node flags, starting a server on a fresh data
// directory, and the autocannon request loops for login and refresh.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The flags `npm start` runs the server with (packages/server/src/cli.ts says why). */
export const SERVER_NODE_FLAGS = ["--max-semi-space-size=8", "--no-parallel-scavenge"];

/**
 * `<launcher> serve` on `port` over a new data directory (so it creates its keys and runs
 * every migration), once it answers /healthz. `env` adds to the environment; `stdio` as
 * for spawn. The caller stops the child and removes `dataDir`.
 */
export async function serveFresh(launcher, port, { env = {}, stdio = "ignore" } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "latchkey-bench-"));
  const child = spawn("node", [...SERVER_NODE_FLAGS, launcher, "serve"], {
    env: { ...process.env, ...env, LATCHKEY_PORT: String(port), LATCHKEY_DATA_DIR: dataDir },
    stdio,
  });
  const base = `http://127.0.0.1:${port}`;
  await healthy(base, launcher);
  return { child, base, dataDir };
}

/** Resolves once `${base}/healthz` answers 200; `what` names the server if it never does. */
export async function healthy(base, what) {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {}
    if (i > 1000) throw new Error(`${what} did not start`);
    await sleep(10);
  }
}

/**
 * Sign-ins over `accounts` accounts (bench-<i>@example.com) in turn: attempts in flight
 * count against the per-account limit until they succeed (a guard against parallel
 * guessing), and no real user signs in 16 times at once.
 */
export function loginRequests(accounts, password) {
  let next = 0;
  return [
    {
      method: "POST",
      path: "/auth/login",
      setupRequest: (req) => ({
        ...req,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ identifier: `bench-${next++ % accounts}@example.com`, password }),
      }),
    },
  ];
}

/**
 * Refreshes that walk each session's rotation chain one request at a time. autocannon
 * resets per-connection context, so the tokens live in `queue` (one per connection to
 * start with): a request takes one, its answer gives the successor back.
 */
export function refreshRequests(queue) {
  return [
    {
      method: "POST",
      path: "/auth/refresh",
      setupRequest: (req) => ({
        ...req,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refreshToken: queue.shift() }),
      }),
      onResponse: (status, body) => {
        if (status === 200) queue.push(JSON.parse(body).refreshToken);
      },
    },
  ];
}
