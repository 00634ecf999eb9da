import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

/**
 * Real server processes, as `npm start` and production run them: the `latchkey` command,
 * `node bin/latchkey.cjs serve`, which loads the bundle. They need the build (`npm run
 * build`; CI builds before it tests), and refuse to run a bundle older than the sources,
 * which would test yesterday's code.
 */
const SERVER_DIR = new URL("../..", import.meta.url).pathname;
const CLI = join(SERVER_DIR, "bin", "latchkey.cjs");
const BUNDLE = join(SERVER_DIR, "dist", "bundle", "latchkey.mjs");
const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const READY_TIMEOUT_MS = 15_000;

export interface Deployment {
  /** The environment every node (and the CLI) of this deployment runs with. */
  env: Record<string, string>;
  /** A direct connection to the deployment's schema, for checking rows. */
  query<T extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  /** Runs `latchkey <args>` against the deployment; resolves with stdout and stderr. */
  cli(...args: string[]): Promise<{ stdout: string; stderr: string }>;
  drop(): Promise<void>;
}

/** A fresh PostgreSQL schema and Redis namespace that several nodes share. */
export function deployment(
  extraEnv: Record<string, string> = {},
  cliEnv: Record<string, string> = {},
): Deployment {
  assertBuildIsCurrent();
  const id = randomBytes(6).toString("hex");
  const schema = `p_${id}`;
  const env = {
    PATH: process.env.PATH ?? "",
    DATABASE_URL: PG_URL,
    LATCHKEY_DATABASE_SCHEMA: schema,
    REDIS_URL,
    LATCHKEY_REDIS_KEY_PREFIX: `proc-${id}`,
    LATCHKEY_HOST: "127.0.0.1",
    // One issuer for every node, as behind a load balancer.
    LATCHKEY_PUBLIC_URL: "http://latchkey.test",
    LATCHKEY_ARGON2_MEMORY_KIB: "8192",
    LATCHKEY_ARGON2_ITERATIONS: "1",
    LATCHKEY_LOG_LEVEL: "info",
    ...extraEnv,
  };
  // A start-up parameter: a SET in the pool's "connect" event races the first query.
  const client = new pg.Pool({
    connectionString: PG_URL,
    max: 2,
    options: `-c search_path=${schema}`,
  });
  return {
    env,
    async query<T extends pg.QueryResultRow>(text: string, values?: unknown[]) {
      return (await client.query<T>(text, values)).rows;
    },
    async cli(...args: string[]) {
      return promisify(execFile)("node", [CLI, ...args], { env: { ...env, ...cliEnv } });
    },
    async drop() {
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    },
  };
}

export interface Node {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  /** SIGTERM (a graceful stop) and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, nothing cleaned up. */
  kill(): Promise<void>;
}

/** Starts `latchkey serve` and waits for its ready line; port 0 picks a free one. */
export async function startNode(dep: Deployment, port = 0): Promise<Node> {
  const child = spawn("node", [CLI, "serve"], {
    env: { ...dep.env, LATCHKEY_PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ready line in time:\n${out}`)),
      READY_TIMEOUT_MS,
    );
    const onData = () => {
      const match = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (!match?.[1]) return;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      resolve(match[1]);
    };
    child.stdout?.on("data", onData);
    void exited.then((code) => reject(new Error(`exited with ${code} before ready:\n${out}`)));
  });
  return {
    url,
    port: Number(new URL(url).port),
    child,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
    async kill() {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** One JSON request; the body is parsed when there is one. */
export async function call(
  node: Node,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const res = await fetch(node.url + path, {
    method,
    headers: {
      ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

export const bearerHeader = (token: unknown) => ({ authorization: `Bearer ${String(token)}` });

/** The claims of a JWT, unverified (the server verifies; tests only read `sid`, `kid`). */
export function decodeJwt(token: unknown): {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
} {
  const [header, claims] = String(token)
    .split(".")
    .slice(0, 2)
    .map(
      (part) => JSON.parse(Buffer.from(part, "base64url").toString()) as Record<string, unknown>,
    );
  return { header: header ?? {}, claims: claims ?? {} };
}

function assertBuildIsCurrent(): void {
  let built: number;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    throw new Error(`${BUNDLE} is missing: run \`npm run build\` before these tests`);
  }
  if (newestMtime(join(SERVER_DIR, "src")) > built) {
    throw new Error(`${BUNDLE} is older than src: run \`npm run build\` first`);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const mtime = entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    if (mtime > newest) newest = mtime;
  }
  return newest;
}
