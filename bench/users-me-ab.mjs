// GET /users/me of two or more launchers side by side, in alternating rounds, so that a
// neighbour's load hits each alike: each serves from a fresh data directory, one Bearer
// access token, 10 connections. Prints every round's req/s per launcher.
// Usage: node bench/users-me-ab.mjs <launcher> <other launcher> [...]
// (ROUNDS=4 and DURATION=8 by default; build the other variant into a git worktree.)
import { rmSync } from "node:fs";
import autocannon from "autocannon";
import { serveFresh } from "./lib.mjs";

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const DURATION = Number(process.env.DURATION ?? 8);
const launchers = process.argv.slice(2);
if (launchers.length < 2) {
  console.error("Usage: node bench/users-me-ab.mjs <launcher> <other launcher> [...]");
  process.exit(2);
}
const password = "correct horse battery staple";

async function serve(launcher, port) {
  const { child, base, dataDir } = await serveFresh(launcher, port);
  const post = (path, body) =>
    fetch(base + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((res) => res.json());
  await post("/auth/register", { email: "ab@example.com", password });
  const { accessToken } = await post("/auth/login", { identifier: "ab@example.com", password });
  const target = {
    url: `${base}/users/me`,
    headers: { authorization: `Bearer ${accessToken}` },
    connections: 10,
  };
  await autocannon({ ...target, duration: 3 }); // warm-up, unmeasured
  return { launcher, child, dataDir, target, rounds: [] };
}

const servers = [];
for (const [i, launcher] of launchers.entries()) servers.push(await serve(launcher, 8601 + i));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate who goes first, so neither always follows the other.
  const order = round % 2 ? [...servers].reverse() : servers;
  for (const server of order) {
    const result = await autocannon({ ...server.target, duration: DURATION });
    server.rounds.push(Math.round(result.requests.average));
  }
}
for (const server of servers) {
  console.log(JSON.stringify({ launcher: server.launcher, rps: server.rounds }));
  server.child.kill("SIGTERM");
  await new Promise((resolve) => server.child.once("exit", resolve));
  rmSync(server.dataDir, { recursive: true, force: true });
}
