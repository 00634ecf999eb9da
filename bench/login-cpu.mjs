// Where a login's CPU goes: starts one server (what `npm start` runs, or CLI=<file>),
// runs logins for DURATION seconds and prints the CPU time per login of the main thread,
// of the other threads (the Argon2id pool, V8's helpers) and of autocannon, from each thread's
// /proc/<pid>/task/<tid>/schedstat (time on a CPU, not wall time, so a busy neighbour
// inflates it far less than it does req/s). A/B two builds by running it on each in turn.
// FLOOR=1 measures the login floor (login-floor.mjs) instead of a Latchkey server.
// Loopback only, bounded by DURATION. Usage: bench/RESULTS.md ("Login ÷ raw Argon2id").
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { healthy, loginRequests, serveFresh } from "./lib.mjs";

const DURATION = Number(process.env.DURATION ?? 8);
// V8 keeps optimising the login path for ~15 s (RESULTS.md, 2026-12-06).
const WARMUP = Number(process.env.WARMUP ?? 2);
const PORT = 8092;
const root = new URL("..", import.meta.url).pathname;
const cli = process.env.CLI ?? join(root, "packages/server/bin/latchkey.cjs");
const FLOOR = process.env.FLOOR === "1";
const password = "correct horse battery staple";
const ACCOUNTS = 32;
const { server, base, dataDir } = FLOOR ? await serveFloor() : await serveLatchkey();

async function serveLatchkey() {
  const { child, base, dataDir } = await serveFresh(cli, PORT, {
    env: {
      LATCHKEY_PUBLIC_RATE_LIMIT: "1000000000",
      LATCHKEY_LOGIN_FAILURES_PER_IP: "1000000000",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; i < ACCOUNTS; i++) {
    await fetch(`${base}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: `bench-${i}@example.com`, password }),
    });
  }
  return { server: child, base, dataDir };
}

/** The floor on a pool of the size the latchkey command gives itself (one thread per core). */
async function serveFloor() {
  const server = spawn("node", [join(root, "bench/login-floor.mjs")], {
    env: {
      ...process.env,
      PORT: String(PORT),
      UV_THREADPOOL_SIZE: String(availableParallelism()),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${PORT}`;
  await healthy(base, "login-floor.mjs");
  return { server, base, dataDir: undefined };
}

const logins = (duration) =>
  autocannon({ url: base, connections: 10, duration, requests: loginRequests(ACCOUNTS, password) });

/** Milliseconds on a CPU so far: the main thread, and all others together. */
function cpu() {
  let main = 0;
  let others = 0;
  for (const tid of readdirSync(`/proc/${server.pid}/task`)) {
    const stat = readFileSync(`/proc/${server.pid}/task/${tid}/schedstat`, "utf8");
    const ms = Number(stat.split(" ")[0]) / 1e6;
    if (Number(tid) === server.pid) main += ms;
    else others += ms;
  }
  return { main, others };
}

await logins(WARMUP); // unmeasured
const before = cpu();
const generator = process.cpuUsage();
const result = await logins(DURATION);
const after = cpu();
const { user, system } = process.cpuUsage(generator);
const n = result.requests.total;
console.log(
  JSON.stringify({
    scenario: FLOOR ? "login-floor-cpu" : "login-cpu",
    rps_mean: Math.round(result.requests.average),
    non2xx: result.non2xx,
    main_ms_per_login: Number(((after.main - before.main) / n).toFixed(2)),
    other_threads_ms_per_login: Number(((after.others - before.others) / n).toFixed(2)),
    load_generator_ms_per_login: Number(((user + system) / 1000 / n).toFixed(2)),
  }),
);
server.kill("SIGTERM");
await new Promise((resolve) => server.once("exit", resolve));
if (dataDir) rmSync(dataDir, { recursive: true, force: true });
