// Cold start of the Lambda handler on SQLite: from spawning a fresh `node` to the first
// answered request (GET /users/me with a Bearer token), migrations applied beforehand.
// Usage: npm run build && npm run build:functions && node bench/cold-start.mjs
// RUNS=15 by default; each variant runs alternately so neighbours' load hits both alike.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const RUNS = Number(process.env.RUNS ?? 15);
const root = new URL("..", import.meta.url).pathname;
const variants = {
  bundled: join(root, "packages/server/dist-functions/lambda.mjs"),
  unbundled: join(root, "packages/server/dist/serverless/lambda.js"),
};
const dir = mkdtempSync(join(tmpdir(), "latchkey-cold-"));
const env = {
  ...process.env,
  DATABASE_URL: `sqlite:${join(dir, "latchkey.db")}`,
  LATCHKEY_PUBLIC_URL: "https://auth.example.com",
  LATCHKEY_LOG_LEVEL: "warn",
};

function run(entry, extraEnv = {}) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "bench/cold-start-child.mjs"), entry], {
      env: { ...env, ...extraEnv },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      // The answer is in once the line is: the wall time stops here, not at exit.
      if (out.includes("\n") && !child.wallMs) child.wallMs = performance.now() - started;
    });
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${out}`));
      resolve({ ...JSON.parse(out), wallMs: child.wallMs });
    });
  });
}

try {
  const migrate = spawnSync(
    process.execPath,
    [join(root, "packages/server/dist/cli.js"), "migrate"],
    { env, encoding: "utf8" },
  );
  if (migrate.status !== 0) throw new Error(migrate.stderr);
  // The first start of a deployment creates its keys; every later cold start finds them.
  const setup = await run(variants.unbundled, {
    METHOD: "POST",
    URL_PATH: "/auth/register",
    BODY: JSON.stringify({ email: "bench@example.com", password: "correct horse battery" }),
    PRINT_TOKEN: "1",
  });
  if (setup.status !== 201) throw new Error(`register: ${setup.status} ${setup.body}`);
  const request = { URL_PATH: "/users/me", TOKEN: setup.token };

  const samples = Object.fromEntries(Object.keys(variants).map((v) => [v, []]));
  const load = loadavg()[0];
  for (let i = 0; i < RUNS; i++) {
    for (const [name, entry] of Object.entries(variants)) {
      const r = await run(entry, request);
      if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.body}`);
      samples[name].push(r);
    }
  }
  const pick = (rows, key, q) => {
    const sorted = rows
      .map((r) => key.split(".").reduce((o, k) => o?.[k], r))
      .sort((a, b) => a - b);
    return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  };
  console.log(
    `node ${process.version}, ${RUNS} runs per variant, load average ${load.toFixed(2)} -> ${loadavg()[0].toFixed(2)}`,
  );
  // A Markdown table, as bench/RESULTS.md records it.
  console.log(
    "| variant | wall p50 / p90 | main thread on CPU p50 / p90 | boot + import + 1st request (main thread, p50) | waiting for a CPU p50 | process CPU p50 |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const [name, rows] of Object.entries(samples)) {
    const p50 = (key) => pick(rows, key, 0.5);
    const phases = ["boot", "import", "firstRequest"].map((k) => p50(`mainThreadCpu.${k}`));
    console.log(
      `| ${name} | ${p50("wallMs")} / ${pick(rows, "wallMs", 0.9)} ms | ` +
        `${p50("mainThreadCpuMs")} / ${pick(rows, "mainThreadCpuMs", 0.9)} ms | ` +
        `${phases.join(" + ")} ms | ${p50("runQueueWaitMs")} ms | ${p50("cpuMs")} ms |`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
