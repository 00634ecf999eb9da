// Start to ready of one or more launchers, in alternation, so that a neighbour's load
// hits each alike: spawn of `node <the flags of npm start> <launcher> serve` on an existing
// data directory to the first 200 from /healthz. Prints the median and every start.
// Usage: node bench/start-ab.mjs packages/server/bin/latchkey.cjs [<other launcher> ...]
// (RUNS=8 by default; build the other variant into a copy of dist/ and give its launcher.)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVER_NODE_FLAGS } from "./lib.mjs";

const RUNS = Number(process.env.RUNS ?? 8);
const PORT = 8093;
const launchers = process.argv.slice(2);
if (launchers.length === 0) {
  console.error("Usage: node bench/start-ab.mjs <launcher> [<launcher> ...]");
  process.exit(2);
}
const dataDir = mkdtempSync(join(tmpdir(), "latchkey-start-"));

async function startToReady(launcher) {
  const started = performance.now();
  const server = spawn("node", [...SERVER_NODE_FLAGS, launcher, "serve"], {
    env: { ...process.env, LATCHKEY_PORT: String(PORT), LATCHKEY_DATA_DIR: dataDir },
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${PORT}/healthz`)).ok) break;
    } catch {}
    if (performance.now() - started > 15_000) throw new Error(`${launcher} did not start`);
    await sleep(3);
  }
  const ms = Math.round(performance.now() - started);
  server.kill("SIGTERM");
  await new Promise((resolve) => server.once("exit", resolve));
  return ms;
}

await startToReady(launchers[0]); // creates the keys and runs the migrations, unmeasured
const times = new Map(launchers.map((l) => [l, []]));
for (let run = 0; run < RUNS; run++) {
  for (const launcher of launchers) times.get(launcher).push(await startToReady(launcher));
}
for (const [launcher, ms] of times) {
  const median = [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)];
  console.log(JSON.stringify({ launcher, median_ms: median, runs_ms: ms }));
}
rmSync(dataDir, { recursive: true, force: true });
