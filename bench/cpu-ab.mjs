// Main-thread CPU per request of two or more launchers, in alternating rounds at a fixed
// rate: on a shared host a neighbour moves req/s by ±25 % between rounds (RESULTS.md),
// far less the CPU time a request takes (/proc/<pid>/task/<pid>/schedstat, time on a CPU).
// SCENARIO=users-me (one Bearer access token) or refresh (10 sessions, rotating each time).
// Usage: node bench/cpu-ab.mjs <launcher> <other launcher> [...]
// (RATE=6000 for users-me and 1500 for refresh, ROUNDS=4, DURATION=6 by default; build the
// other variant into a git worktree.)
import { readFileSync, rmSync } from "node:fs";
import autocannon from "autocannon";
import { refreshRequests, serveFresh } from "./lib.mjs";

const SCENARIO = process.env.SCENARIO ?? "users-me";
const RATE = Number(process.env.RATE ?? (SCENARIO === "refresh" ? 1500 : 6000));
const ROUNDS = Number(process.env.ROUNDS ?? 4);
const DURATION = Number(process.env.DURATION ?? 6);
const launchers = process.argv.slice(2);
if (launchers.length < 2 || !["users-me", "refresh"].includes(SCENARIO)) {
  console.error(
    "Usage: [SCENARIO=users-me|refresh] node bench/cpu-ab.mjs <launcher> <other> [...]",
  );
  process.exit(2);
}
const password = "correct horse battery staple";

async function serve(launcher, port) {
  const { child, base, dataDir } = await serveFresh(launcher, port);
  const register = (email) =>
    fetch(`${base}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, password }),
    }).then((res) => res.json());
  let target;
  if (SCENARIO === "users-me") {
    const { accessToken } = await register("ab@example.com");
    const headers = { authorization: `Bearer ${accessToken}` };
    target = { url: `${base}/users/me`, headers, connections: 10 };
  } else {
    const queue = [];
    for (let i = 0; i < 10; i++) queue.push((await register(`ab-${i}@example.com`)).refreshToken);
    target = { url: base, connections: 10, requests: refreshRequests(queue) };
  }
  await autocannon({ ...target, duration: 3 }); // warm-up, unmeasured
  return { launcher, child, dataDir, target, rounds: [] };
}

/** Microseconds the server's main thread has spent on a CPU so far. */
const mainThreadCpu = (pid) =>
  Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]) / 1000;

const servers = [];
for (const [i, launcher] of launchers.entries()) servers.push(await serve(launcher, 8611 + i));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate who goes first, so neither always follows the other.
  const order = round % 2 ? [...servers].reverse() : servers;
  for (const server of order) {
    const before = mainThreadCpu(server.child.pid);
    const result = await autocannon({ ...server.target, duration: DURATION, overallRate: RATE });
    const perRequest = (mainThreadCpu(server.child.pid) - before) / result.requests.total;
    server.rounds.push(Number(perRequest.toFixed(1)));
  }
}
for (const server of servers) {
  const mean = server.rounds.reduce((a, b) => a + b, 0) / server.rounds.length;
  console.log(
    JSON.stringify({
      scenario: SCENARIO,
      launcher: server.launcher,
      main_us_per_request: server.rounds,
      mean: Number(mean.toFixed(1)),
    }),
  );
  server.child.kill("SIGTERM");
  await new Promise((resolve) => server.child.once("exit", resolve));
  rmSync(server.dataDir, { recursive: true, force: true });
}
