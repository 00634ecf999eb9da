// Scale benchmark: login, refresh and users/me latency against PostgreSQL holding
// USERS users and SESSIONS sessions, versus an empty database. Two schemas are seeded
// (bench/seed-scale.mjs; the empty one gets only the accounts to sign in as), one
// server runs on each, and every scenario runs in rounds alternating between them so
// both meet the same noise. Both schemas are dropped at the end (KEEP=1 keeps them,
// REUSE=<id> measures again on kept ones).
// Loopback only, every run bounded by DURATION. Not part of CI. Usage: bench/RESULTS.md.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import pg from "pg";
import { loginRequests, refreshRequests, SERVER_NODE_FLAGS } from "./lib.mjs";
import { KNOWN_USERS, PASSWORD, seed } from "./seed-scale.mjs";

const URL_ = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const USERS = Number(process.env.USERS ?? 1_000_000);
const SESSIONS = Number(process.env.SESSIONS ?? 5_000_000);
const DURATION = Number(process.env.DURATION ?? 8);
const WARMUP = Number(process.env.WARMUP ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 10);
const TARGET = 1.5;
const root = new URL("..", import.meta.url).pathname;
const outDir = join(root, "bench", "out");
mkdirSync(outDir, { recursive: true });

// REUSE=<id> measures again on the schemas a KEEP=1 run left (seeding takes ~10 minutes).
const id = process.env.REUSE ?? randomBytes(3).toString("hex");
const targets = {
  empty: { schema: `bench_empty_${id}`, port: 8093 },
  scale: { schema: `bench_scale_${id}`, port: 8094 },
};
const log = (...args) => console.error(new Date().toISOString().slice(11, 19), ...args);

async function dropSchemas() {
  const client = new pg.Client({ connectionString: URL_ });
  await client.connect();
  for (const t of Object.values(targets))
    await client.query(`drop schema if exists "${t.schema}" cascade`);
  await client.end();
}

async function sizes(schema) {
  const client = new pg.Client({ connectionString: URL_ });
  await client.connect();
  const { rows } = await client.query(
    `select (select count(*) from "${schema}".users)::int as users,
            (select count(*) from "${schema}".sessions)::int as sessions,
            pg_size_pretty(pg_total_relation_size('"${schema}".sessions')) as sessions_size`,
  );
  await client.end();
  return rows[0];
}

function startServer(t) {
  const child = spawn("node", [...SERVER_NODE_FLAGS, "packages/server/bin/latchkey.cjs", "serve"], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: URL_,
      LATCHKEY_DATABASE_SCHEMA: t.schema,
      LATCHKEY_PORT: String(t.port),
      LATCHKEY_LOG_LEVEL: "warn",
      // Every request comes from 127.0.0.1: lift the per-IP and per-account budgets.
      LATCHKEY_PUBLIC_RATE_LIMIT: "1000000000",
      LATCHKEY_LOGIN_FAILURES_PER_IP: "1000000000",
      LATCHKEY_LOGIN_FAILURES_PER_IDENTIFIER: "1000000000",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return { child, base: `http://127.0.0.1:${t.port}` };
}

async function waitReady(base) {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error(`${base} did not become ready`);
}

async function post(base, path, body) {
  const res = await fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** The three scenarios' autocannon options for one server. */
async function scenarios(base) {
  const login = (i) =>
    post(base, "/auth/login", {
      identifier: `bench-${i % KNOWN_USERS}@example.com`,
      password: PASSWORD,
    });
  const { accessToken } = await login(0);
  // Each request presents the token its predecessor's answer returned (rotation every
  // time). A run that ends drops the answers still in flight, so each run starts with a
  // full queue of fresh sessions.
  const queue = [];
  return {
    "users/me": async () => ({
      url: `${base}/users/me`,
      headers: { authorization: `Bearer ${accessToken}` },
    }),
    refresh: async () => {
      queue.length = 0;
      for (let i = 0; i < CONNECTIONS; i++) queue.push((await login(i)).refreshToken);
      return { url: base, requests: refreshRequests(queue) };
    },
    login: async () => ({ url: base, requests: loginRequests(KNOWN_USERS, PASSWORD) }),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const run = (opts, duration = DURATION) =>
  autocannon({ connections: CONNECTIONS, duration, ...opts });

try {
  for (const [name, t] of Object.entries(targets)) {
    log(`${process.env.REUSE ? "reusing" : "seeding"} ${name} (${t.schema})`);
    if (!process.env.REUSE)
      await seed({
        url: URL_,
        schema: t.schema,
        users: name === "scale" ? USERS : 0,
        sessions: name === "scale" ? SESSIONS : 0,
      });
    t.size = await sizes(t.schema);
    log(name, JSON.stringify(t.size));
  }
  const servers = Object.fromEntries(Object.entries(targets).map(([n, t]) => [n, startServer(t)]));
  for (const s of Object.values(servers)) await waitReady(s.base);
  const opts = {};
  for (const [n, s] of Object.entries(servers)) opts[n] = await scenarios(s.base);

  const results = {};
  for (const scenario of ["users/me", "refresh", "login"]) {
    for (const n of Object.keys(servers)) await run(await opts[n][scenario](), WARMUP);
    const rounds = { empty: [], scale: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const n of Object.keys(servers)) {
        const res = await run(await opts[n][scenario]());
        if (res.non2xx || res.errors)
          log(`WARNING ${scenario} ${n}: non2xx ${res.non2xx}, errors ${res.errors}`);
        rounds[n].push(res);
        log(
          scenario,
          n,
          `round ${r + 1}`,
          Math.round(res.requests.average),
          "req/s",
          `p50 ${res.latency.p50}`,
          `p99 ${res.latency.p99}`,
        );
      }
    }
    const summary = (runs) => ({
      rps: Math.round(runs.reduce((a, r) => a + r.requests.average, 0) / runs.length),
      p50: median(runs.map((r) => r.latency.p50)),
      // The median round: one stall of this shared machine should not decide the ratio.
      p99: median(runs.map((r) => r.latency.p99)),
      non2xx: runs.reduce((a, r) => a + r.non2xx + r.errors, 0),
      rounds: runs.map((r) => [Math.round(r.requests.average), r.latency.p50, r.latency.p99]),
    });
    results[scenario] = { empty: summary(rounds.empty), scale: summary(rounds.scale) };
  }
  for (const s of Object.values(servers)) {
    s.child.kill("SIGTERM");
    await new Promise((resolve) => s.child.once("exit", resolve));
  }

  // Sub-millisecond latencies read as 0 or 1 ms in autocannon: compare with a 1 ms floor.
  const ratio = (a, b) => (Math.max(a, 1) / Math.max(b, 1)).toFixed(2);
  const lines = [
    `| scenario | empty req/s | ${USERS.toLocaleString("en")} users req/s | empty p50 / p99 (ms) | scaled p50 / p99 (ms) | p50 ratio | p99 ratio | within ${TARGET}x |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const [scenario, { empty, scale }] of Object.entries(results)) {
    const r50 = ratio(scale.p50, empty.p50);
    const r99 = ratio(scale.p99, empty.p99);
    const ok = Number(r50) <= TARGET && Number(r99) <= TARGET ? "yes" : "no";
    lines.push(
      `| ${scenario} | ${empty.rps} | ${scale.rps} | ${empty.p50} / ${empty.p99} | ${scale.p50} / ${scale.p99} | ${r50} | ${r99} | ${ok} |`,
    );
  }
  console.log(lines.join("\n"));
  writeFileSync(
    join(outDir, "scale.json"),
    JSON.stringify(
      { sizes: { empty: targets.empty.size, scale: targets.scale.size }, results },
      null,
      2,
    ),
  );
} finally {
  if (process.env.KEEP !== "1") {
    log("dropping the bench schemas");
    await dropSchemas();
  }
}
