// One cold start: a fresh process imports the Lambda handler and answers one API Gateway
// HTTP API (2.0) event. Prints its own timings as JSON; bench/cold-start.mjs runs it.
import { readFileSync } from "node:fs";

const imported = performance.now();
const atStart = mainThreadSchedstat();
const { handler } = await import(process.argv[2]);
const loaded = performance.now();
const atLoad = mainThreadSchedstat();
const [method, path, body] = [process.env.METHOD ?? "GET", process.env.URL_PATH, process.env.BODY];
const res = await handler(
  {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: {
      host: "abc123.execute-api.eu-west-1.amazonaws.com",
      ...(process.env.TOKEN ? { authorization: `Bearer ${process.env.TOKEN}` } : {}),
      ...(body ? { "content-type": "application/json" } : {}),
    },
    requestContext: {
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "198.51.100.1", userAgent: "bench" },
      requestId: "cold-start",
      routeKey: "$default",
      stage: "$default",
    },
    ...(body ? { body } : {}),
    isBase64Encoded: false,
  },
  { awsRequestId: "cold-start" },
);
const answered = performance.now();
const cpu = process.cpuUsage();
const main = mainThreadSchedstat();
console.log(
  JSON.stringify({
    status: res.statusCode,
    body: res.statusCode >= 300 ? res.body : undefined,
    token: process.env.PRINT_TOKEN ? JSON.parse(res.body).accessToken : undefined,
    bootMs: imported,
    importMs: loaded - imported,
    firstRequestMs: answered - loaded,
    sinceProcessStartMs: answered,
    cpuMs: (cpu.user + cpu.system) / 1000,
    mainThreadCpuMs: main?.onCpuMs,
    mainThreadCpu: main && {
      boot: atStart.onCpuMs,
      import: atLoad.onCpuMs - atStart.onCpuMs,
      firstRequest: main.onCpuMs - atLoad.onCpuMs,
    },
    runQueueWaitMs: main?.waitingMs,
  }),
);
process.exit(0);

/**
 * Linux: how long this process's main thread ran, and how long it sat runnable waiting
 * for a CPU (sched-stats.rst). On a shared host the wall time mostly measures the
 * neighbours; the main thread's own CPU time is what a quiet machine would take.
 */
function mainThreadSchedstat() {
  try {
    const [onCpu, waiting] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8")
      .split(" ")
      .map(Number);
    return { onCpuMs: onCpu / 1e6, waitingMs: waiting / 1e6 };
  } catch {
    return undefined;
  }
}
