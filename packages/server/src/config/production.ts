import type { Config } from "./load.js";
import { ConfigError } from "./load.js";
import { ENV } from "./schema.js";

/** OWASP Password Storage Cheat Sheet: its weakest Argon2id pairing is m=7168 KiB, t=5. */
const MIN_ARGON2_KIB_TIMES_ITERATIONS = 7168 * 5;
/** RFC 7518 §3.2: an HS256 key must carry at least 256 bits. */
const MIN_HS256_BITS = 256;
/**
 * A long secret of few distinct characters ("aaaa…", "abcabc…") is not a random one.
 * Ten, not sixteen: 64 random hex digits miss at least one of the sixteen a quarter of the time.
 */
const MIN_SECRET_DISTINCT_CHARS = 10;

/**
 * In production mode the server refuses to start on any of these; each message
 * names the environment variable and the config key to fix. Listed in README.md
 * ("Production checklist"); test/production.test.ts refuses each one.
 */
export function productionProblems(c: Config): string[] {
  const problems: string[] = [];
  const say = (key: string, message: string) => problems.push(`${name(key)}: ${message}`);

  if (!c.masterKey) {
    say("masterKey", "not set; signing keys, token keys and TOTP secrets would be stored in clear");
  }
  if (!c.cookies.secure) {
    say("cookies.secure", "is false; token cookies would travel over plain HTTP");
  }
  if (new URL(c.publicUrl).protocol !== "https:") {
    say("publicUrl", `must be an https:// URL (now ${c.publicUrl}); it is the token issuer`);
  }
  for (const origin of c.allowedOrigins) {
    if (origin.includes("*")) {
      say("allowedOrigins", `${origin} is a wildcard; list each origin that may use cookies`);
    } else if (new URL(origin).protocol !== "https:" && !isLoopback(origin)) {
      say("allowedOrigins", `${origin} is plain HTTP; a network attacker could act as it`);
    }
  }
  if (c.jwtSecret) {
    if (c.jwtSecret === c.masterKey) {
      say("jwtSecret", "equals the master key; use two independent secrets");
    } else if (!looksRandom(c.jwtSecret)) {
      say(
        "jwtSecret",
        `looks weak; HS256 needs ${MIN_HS256_BITS} random bits (openssl rand -base64 32)`,
      );
    }
  }
  mailProblems(c, say);
  const { argon2MemoryKiB, argon2Iterations } = c.password;
  if (argon2MemoryKiB * argon2Iterations < MIN_ARGON2_KIB_TIMES_ITERATIONS) {
    say(
      "password.argon2MemoryKiB",
      `with ${argon2Iterations} iteration(s) is below OWASP's minimum for Argon2id (e.g. 19456 KiB, 2 iterations)`,
    );
  }
  return problems;
}

/**
 * Functions run as many short-lived instances: what one keeps in memory (failed-login
 * counts, used TOTP codes, revocation notices) or on its disk the others never see.
 */
function functionProblems(c: Config): string[] {
  const problems: string[] = [];
  if (!c.redisUrl) {
    problems.push(
      `${name("redisUrl")}: not set; each function instance would keep its own login limits and TOTP replay guard`,
    );
  }
  if (c.databaseUrl.startsWith("sqlite:")) {
    problems.push(`${name("databaseUrl")}: SQLite in a function lives and dies with one instance`);
  }
  return problems;
}

/** Mail carries sign-in links and reset tokens: off this machine it goes over TLS. */
function mailProblems(c: Config, say: (key: string, message: string) => void): void {
  const { transport, smtp, http } = c.mail;
  if (transport === "outbox") {
    say(
      "mail.transport",
      "is the development outbox, which writes sign-in and reset links to disk instead of sending them; use smtp or http",
    );
  }
  if (transport === "smtp" && !smtp.secure && !smtp.requireTls && !isLoopbackHost(smtp.host)) {
    say(
      "mail.smtp.requireTls",
      `is false; mail to ${smtp.host} could go in clear, with its password and sign-in links`,
    );
  }
  const api = new URL(http.url);
  if (transport === "http" && api.protocol !== "https:" && !isLoopbackHost(api.hostname)) {
    say(
      "mail.http.url",
      `${http.url} is plain HTTP; the API key and sign-in links would travel in clear`,
    );
  }
}

export function assertProductionReady(
  config: Config,
  deployment: "server" | "function" = "server",
): void {
  if (config.mode !== "production") return;
  const problems = [
    ...productionProblems(config),
    ...(deployment === "function" ? functionProblems(config) : []),
  ];
  if (problems.length === 0) return;
  throw new ConfigError(
    `Refusing to start in production mode (LATCHKEY_MODE=production):\n  - ${problems.join("\n  - ")}`,
  );
}

const ENV_OF = new Map(Object.entries(ENV).map(([env, key]) => [key, env]));

function name(key: string): string {
  const env = ENV_OF.get(key);
  return env ? `${env} (${key})` : key;
}

function isLoopback(origin: string): boolean {
  return isLoopbackHost(new URL(origin).hostname);
}

function isLoopbackHost(host: string): boolean {
  return (
    host === "localhost" || host === "[::1]" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)
  );
}

/**
 * Estimated entropy: length times log2 of the alphabet its character classes span.
 * `openssl rand -base64 32` (44 chars) and `-hex 32` (64 chars) pass; a 32-character
 * passphrase does not.
 */
function looksRandom(secret: string): boolean {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/];
  const sizes = [26, 26, 10, 33];
  const alphabet = classes.reduce((n, re, i) => n + (re.test(secret) ? (sizes[i] ?? 0) : 0), 0);
  const bits = [...secret].length * Math.log2(alphabet);
  return bits >= MIN_HS256_BITS && new Set(secret).size >= MIN_SECRET_DISTINCT_CHARS;
}
