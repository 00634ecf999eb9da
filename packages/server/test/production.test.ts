import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { assertProductionReady } from "../src/config/production.js";

/** A production configuration that passes every check (README, "Production checklist"). */
const SECURE: Record<string, string> = {
  LATCHKEY_MODE: "production",
  LATCHKEY_PUBLIC_URL: "https://auth.example.com",
  LATCHKEY_MASTER_KEY: randomBytes(32).toString("base64"),
  LATCHKEY_ALLOWED_ORIGINS: "https://app.example.com,https://auth.example.com",
  LATCHKEY_TRUST_PROXY: "10.0.0.0/8",
  DATABASE_URL: "sqlite::memory:",
  LATCHKEY_MAIL_TRANSPORT: "smtp",
  LATCHKEY_SMTP_HOST: "smtp.example.com",
};

/** createApp's refusal for SECURE with `change` applied; the checks run before any I/O. */
async function refusal(change: Record<string, string | undefined>): Promise<string> {
  const env = { ...SECURE, ...change };
  const err = await createApp(loadConfig(env)).then(
    async (app) => {
      await app.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  const message = (err as Error).message;
  expect(message).toMatch(/^Refusing to start in production mode/);
  return message;
}

describe("production mode refuses insecure settings, naming each", () => {
  it.each([
    [
      "no master key",
      { LATCHKEY_MASTER_KEY: undefined },
      "LATCHKEY_MASTER_KEY (masterKey): not set",
    ],
    [
      "Secure cookies off",
      { LATCHKEY_COOKIE_SECURE: "false" },
      "LATCHKEY_COOKIE_SECURE (cookies.secure): is false",
    ],
    [
      "a plain-HTTP public URL",
      { LATCHKEY_PUBLIC_URL: "http://auth.example.com" },
      "LATCHKEY_PUBLIC_URL (publicUrl): must be an https:// URL (now http://auth.example.com)",
    ],
    [
      "no public URL (the http://host:port default)",
      { LATCHKEY_PUBLIC_URL: undefined },
      "LATCHKEY_PUBLIC_URL (publicUrl): must be an https:// URL (now http://127.0.0.1:8080)",
    ],
    [
      "a wildcard allowed origin",
      { LATCHKEY_ALLOWED_ORIGINS: "https://*.example.com" },
      "LATCHKEY_ALLOWED_ORIGINS (allowedOrigins): https://*.example.com is a wildcard",
    ],
    [
      "a plain-HTTP allowed origin",
      { LATCHKEY_ALLOWED_ORIGINS: "https://app.example.com,http://app.example.com" },
      "LATCHKEY_ALLOWED_ORIGINS (allowedOrigins): http://app.example.com is plain HTTP",
    ],
    [
      "a passphrase as HS256 secret",
      { LATCHKEY_JWT_SECRET: "correct horse battery staple 2026" },
      "LATCHKEY_JWT_SECRET (jwtSecret): looks weak",
    ],
    [
      "a repetitive HS256 secret",
      { LATCHKEY_JWT_SECRET: "aB3$".repeat(16) },
      "LATCHKEY_JWT_SECRET (jwtSecret): looks weak",
    ],
    [
      "the master key reused as HS256 secret",
      { LATCHKEY_JWT_SECRET: SECURE.LATCHKEY_MASTER_KEY },
      "LATCHKEY_JWT_SECRET (jwtSecret): equals the master key",
    ],
    [
      "Argon2 below OWASP's minimum",
      { LATCHKEY_ARGON2_MEMORY_KIB: "8192", LATCHKEY_ARGON2_ITERATIONS: "1" },
      "LATCHKEY_ARGON2_MEMORY_KIB (password.argon2MemoryKiB): with 1 iteration(s) is below OWASP's minimum",
    ],
    [
      "SMTP without TLS to another host",
      {
        LATCHKEY_MAIL_TRANSPORT: "smtp",
        LATCHKEY_SMTP_HOST: "smtp.example.com",
        LATCHKEY_SMTP_REQUIRE_TLS: "false",
      },
      "LATCHKEY_SMTP_REQUIRE_TLS (mail.smtp.requireTls): is false; mail to smtp.example.com could go in clear",
    ],
    [
      "the development mail outbox",
      { LATCHKEY_MAIL_TRANSPORT: "outbox" },
      "LATCHKEY_MAIL_TRANSPORT (mail.transport): is the development outbox",
    ],
    [
      "a plain-HTTP mail API",
      {
        LATCHKEY_MAIL_TRANSPORT: "http",
        LATCHKEY_MAIL_API_URL: "http://mail.example.com/send",
        LATCHKEY_MAIL_API_KEY: "key",
        LATCHKEY_MAIL_API_SECRET: "secret",
      },
      "LATCHKEY_MAIL_API_URL (mail.http.url): http://mail.example.com/send is plain HTTP",
    ],
  ])("%s", async (_name, change, expected) => {
    const message = await refusal(change);
    expect(message).toContain(expected);
    expect(message.split("\n")).toHaveLength(2); // the headline and this one problem
  });

  it("lists every problem at once", async () => {
    const message = await refusal({
      LATCHKEY_MASTER_KEY: undefined,
      LATCHKEY_COOKIE_SECURE: "false",
      LATCHKEY_PUBLIC_URL: "http://auth.example.com",
    });
    expect(message.split("\n").slice(1)).toEqual([
      expect.stringContaining("LATCHKEY_MASTER_KEY"),
      expect.stringContaining("LATCHKEY_COOKIE_SECURE"),
      expect.stringContaining("LATCHKEY_PUBLIC_URL"),
    ]);
  });

  it("never echoes a secret in the message", async () => {
    const weak = "correct horse battery staple 2026";
    expect(await refusal({ LATCHKEY_JWT_SECRET: weak })).not.toContain(weak);
    const reused = await refusal({ LATCHKEY_JWT_SECRET: SECURE.LATCHKEY_MASTER_KEY });
    expect(reused).not.toContain(SECURE.LATCHKEY_MASTER_KEY);
  });
});

describe("production functions", () => {
  const FUNCTION = {
    ...SECURE,
    DATABASE_URL: "postgres://latchkey@db.internal:5432/latchkey",
    REDIS_URL: "redis://10.0.0.5:6379",
  };
  const refusal = (change: Record<string, string | undefined>) => () =>
    assertProductionReady(loadConfig({ ...FUNCTION, ...change }), "function");

  it("start with shared state: PostgreSQL and Redis", () => {
    expect(refusal({})).not.toThrow();
    expect(() => assertProductionReady(loadConfig(SECURE))).not.toThrow();
  });

  it.each([
    [
      "no Redis",
      { REDIS_URL: undefined },
      "REDIS_URL (redisUrl): not set; each function instance would keep its own login limits and TOTP replay guard",
    ],
    [
      "SQLite",
      { DATABASE_URL: "sqlite:/tmp/latchkey.db" },
      "DATABASE_URL (databaseUrl): SQLite in a function lives and dies with one instance",
    ],
  ])("refuse %s", (_name, change, expected) => {
    expect(refusal(change)).toThrow(expected);
  });
});

describe("production mode starts with secure settings", () => {
  it.each([
    ["the secure baseline", {}],
    [
      "a random HS256 secret (openssl rand -base64 32)",
      { LATCHKEY_JWT_SECRET: randomBytes(32).toString("base64") },
    ],
    [
      "a random HS256 secret (openssl rand -hex 32)",
      { LATCHKEY_JWT_SECRET: randomBytes(32).toString("hex") },
    ],
    // Regression: 64 random hex digits often miss one of the sixteen, and a rule of
    // sixteen distinct characters refused about a quarter of them.
    [
      "a random hex secret that uses only 14 of the 16 digits",
      { LATCHKEY_JWT_SECRET: "7a2ccce4c3aeaf989ad0def6a755609762ecc7d4860cae2f2756376dd83a64c5" },
    ],
    [
      "a loopback http origin (local tooling)",
      { LATCHKEY_ALLOWED_ORIGINS: "http://localhost:3000" },
    ],
    [
      "SMTP without TLS to a relay on the same machine",
      {
        LATCHKEY_MAIL_TRANSPORT: "smtp",
        LATCHKEY_SMTP_HOST: "127.0.0.1",
        LATCHKEY_SMTP_REQUIRE_TLS: "false",
      },
    ],
    [
      "the OWASP m=9216 KiB, t=4 pairing",
      { LATCHKEY_ARGON2_MEMORY_KIB: "9216", LATCHKEY_ARGON2_ITERATIONS: "4" },
    ],
  ])("%s", async (_name, change) => {
    const dir = mkdtempSync(join(tmpdir(), "latchkey-prod-"));
    try {
      const config = loadConfig({
        ...SECURE,
        ...change,
        DATABASE_URL: `sqlite:${join(dir, "db")}`,
      });
      const app = await createApp(config, { logger: pino({ level: "silent" }) });
      const res = await app.http.inject({ url: "/healthz" });
      expect(res.statusCode).toBe(200);
      await app.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("development mode checks none of this", async () => {
    const config = loadConfig({
      ...SECURE,
      LATCHKEY_MODE: "development",
      LATCHKEY_MASTER_KEY: undefined,
      LATCHKEY_COOKIE_SECURE: "false",
    });
    const app = await createApp(config, { logger: pino({ level: "silent" }) });
    await app.close();
  });
});
