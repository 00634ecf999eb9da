// The login ceiling: Argon2id verifies at Latchkey's default parameters, as many
// in flight as the load test has connections, for DURATION seconds. Prints one JSON line.
import { availableParallelism } from "node:os";
import { hash, verify } from "@node-rs/argon2";
import { ARGON2_PARAMS } from "./argon2-params.mjs";

const seconds = Number(process.env.DURATION ?? 10);
// As many in flight as the load test has connections: the pool always has work queued.
const inFlight = Number(process.env.CONNECTIONS ?? 10);
const stored = await hash("correct horse battery staple", ARGON2_PARAMS);

let done = 0;
const end = Date.now() + seconds * 1000;
async function worker() {
  while (Date.now() < end) {
    if (!(await verify(stored, "correct horse battery staple"))) throw new Error("verify failed");
    done++;
  }
}
const started = Date.now();
await Promise.all(Array.from({ length: inFlight }, worker));
const elapsed = (Date.now() - started) / 1000;
console.log(
  JSON.stringify({
    scenario: "argon2-raw",
    rps_mean: done / elapsed,
    inFlight,
    cores: availableParallelism(),
  }),
);
