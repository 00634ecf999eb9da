// One cold start: a fresh process imports the Lambda handler and answers one API Gateway
// HTTP API (2.0) event. Prints its own timings as JSON; bench/cold-start.mjs runs it.
const imported = performance.now();
const { handler } = await import(process.argv[2]);
const loaded = performance.now();
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
  }),
);
process.exit(0);
