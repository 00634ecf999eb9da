import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config/load.js";

describe("loadConfig", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "latchkey-config-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a config file and returns the environment that names it. */
  function configFile(name: string, content: unknown): { LATCHKEY_CONFIG: string } {
    const file = join(dir, name);
    writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
    return { LATCHKEY_CONFIG: file };
  }

  function configError(env: Record<string, string>): ConfigError {
    try {
      loadConfig(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
  }

  describe("defaults", () => {
    it("listens on 127.0.0.1:8080 with SQLite under ./data", () => {
      const c = loadConfig({});
      expect(c.port).toBe(8080);
      expect(c.host).toBe("127.0.0.1");
      expect(c.mode).toBe("development");
      expect(c.databaseUrl).toMatch(/^sqlite:(\.\/)?data\/latchkey\.db$/);
      expect(c.publicUrl).toBe("http://127.0.0.1:8080");
      expect(c.issuer).toBe(c.publicUrl);
      expect(c.audience).toBe("latchkey");
      expect(c.masterKey).toBeUndefined();
      expect(c.jwtSecret).toBeUndefined();
      expect(c.redisUrl).toBeUndefined();
    });

    it("puts an IPv6 host in brackets in the default public URL", () => {
      const c = loadConfig({ LATCHKEY_HOST: "::1" });
      expect(c.publicUrl).toBe("http://[::1]:8080");
      expect(c.allowedOrigins).toContain("http://[::1]:8080");
    });

    it("has the token lifetimes and delivery of the contract", () => {
      const { tokens, cookies } = loadConfig({});
      expect(tokens).toEqual({
        accessTtlSeconds: 900,
        refreshTtlSeconds: 7 * 86_400,
        rememberMeTtlSeconds: 90 * 86_400,
        maxSessionDurationSeconds: 90 * 86_400,
        refreshGraceSeconds: 10,
        delivery: "both",
        clockToleranceSeconds: 5,
      });
      expect(cookies.secure).toBe(true);
    });

    it("allows the server's own origin, plus its loopback twin in development only", () => {
      expect(loadConfig({}).allowedOrigins).toEqual([
        "http://127.0.0.1:8080",
        "http://localhost:8080",
      ]);
      const prod = loadConfig({
        LATCHKEY_MODE: "production",
        LATCHKEY_PUBLIC_URL: "https://auth.example.com/",
      });
      expect(prod.publicUrl).toBe("https://auth.example.com"); // trailing slash dropped
      expect(prod.allowedOrigins).toEqual(["https://auth.example.com"]);
    });

    it("requires email verification, new-sign-in notices and a tight mail budget by default only where they make sense", () => {
      const dev = loadConfig({});
      expect(dev.emailVerificationRequired).toBe(false);
      expect(dev.mail).toMatchObject({
        transport: "outbox",
        newSignInNotice: false,
        perIp: 10_000,
      });
      expect(dev.rateLimit.publicPerIp).toBe(600);
      const prod = loadConfig({
        LATCHKEY_MODE: "production",
        LATCHKEY_PUBLIC_URL: "https://auth.example.com",
        LATCHKEY_MAIL_TRANSPORT: "smtp",
        LATCHKEY_SMTP_PORT: "465",
      });
      expect(prod.emailVerificationRequired).toBe(true);
      expect(prod.mail).toMatchObject({ newSignInNotice: true, perIp: 100, smtp: { port: 465 } });
      expect(
        loadConfig({ LATCHKEY_EMAIL_VERIFICATION_REQUIRED: "false", LATCHKEY_MODE: "production" })
          .emailVerificationRequired,
      ).toBe(false);
    });

    it("ignores empty environment values", () => {
      expect(loadConfig({ LATCHKEY_PORT: "", LATCHKEY_HOST: "" })).toMatchObject({
        port: 8080,
        host: "127.0.0.1",
      });
    });
  });

  describe("environment", () => {
    it("overrides the defaults", () => {
      const c = loadConfig({
        LATCHKEY_PORT: "9090",
        LATCHKEY_HOST: "0.0.0.0",
        LATCHKEY_TOKEN_DELIVERY: "cookie",
        LATCHKEY_ALLOWED_ORIGINS: "http://a.test, https://b.test:8443,,",
        LATCHKEY_COOKIE_SECURE: "false",
        LATCHKEY_ACCESS_TTL_SECONDS: "300",
        DATABASE_URL: "postgres://u@db:5432/latchkey",
        LATCHKEY_DATA_DIR: "/var/lib/latchkey",
      });
      expect(c.port).toBe(9090);
      expect(c.host).toBe("0.0.0.0");
      expect(c.tokens.delivery).toBe("cookie");
      expect(c.allowedOrigins).toEqual(["http://a.test", "https://b.test:8443"]);
      expect(c.cookies.secure).toBe(false);
      expect(c.tokens.accessTtlSeconds).toBe(300);
      expect(c.databaseUrl).toBe("postgres://u@db:5432/latchkey");
    });

    it("caps a user's session duration at the rememberMe lifetime unless told otherwise", () => {
      const shorter = loadConfig({ LATCHKEY_REMEMBER_ME_TTL_SECONDS: String(30 * 86_400) });
      expect(shorter.tokens.maxSessionDurationSeconds).toBe(30 * 86_400);
      const set = loadConfig({
        LATCHKEY_REMEMBER_ME_TTL_SECONDS: String(30 * 86_400),
        LATCHKEY_MAX_SESSION_DURATION_SECONDS: "86400",
      });
      expect(set.tokens.maxSessionDurationSeconds).toBe(86_400);
    });

    it("puts the default SQLite file in LATCHKEY_DATA_DIR", () => {
      expect(loadConfig({ LATCHKEY_DATA_DIR: "/srv/lk" }).databaseUrl).toBe(
        "sqlite:/srv/lk/latchkey.db",
      );
    });

    it("accepts true/false for booleans", () => {
      expect(loadConfig({ LATCHKEY_COOKIE_SECURE: "true" }).cookies.secure).toBe(true);
      expect(loadConfig({ LATCHKEY_COOKIE_SECURE: "false" }).cookies.secure).toBe(false);
    });

    it("lets programmatic overrides win over the environment", () => {
      const c = loadConfig({ LATCHKEY_PORT: "9090" }, { port: 7070 });
      expect(c.port).toBe(7070);
    });

    it("reads nothing from process.env when given an environment", () => {
      process.env.LATCHKEY_PORT = "1234";
      try {
        expect(loadConfig({}).port).toBe(8080);
      } finally {
        delete process.env.LATCHKEY_PORT;
      }
    });
  });

  describe("errors name the key that is wrong", () => {
    it("LATCHKEY_PORT=abc", () => {
      const err = configError({ LATCHKEY_PORT: "abc" });
      expect(err.message).toContain("LATCHKEY_PORT");
    });

    it("LATCHKEY_PORT out of range", () => {
      expect(configError({ LATCHKEY_PORT: "70000" }).message).toContain("LATCHKEY_PORT");
    });

    it("LATCHKEY_TOKEN_DELIVERY=x", () => {
      expect(configError({ LATCHKEY_TOKEN_DELIVERY: "x" }).message).toContain(
        "LATCHKEY_TOKEN_DELIVERY",
      );
    });

    it("LATCHKEY_COOKIE_SECURE=maybe", () => {
      expect(configError({ LATCHKEY_COOKIE_SECURE: "maybe" }).message).toContain(
        "LATCHKEY_COOKIE_SECURE",
      );
    });

    it("a master key or JWT secret that is too short", () => {
      expect(configError({ LATCHKEY_MASTER_KEY: "short" }).message).toContain(
        "LATCHKEY_MASTER_KEY",
      );
      expect(configError({ LATCHKEY_JWT_SECRET: "short" }).message).toContain(
        "LATCHKEY_JWT_SECRET",
      );
    });

    it("a public URL that is not http(s)", () => {
      expect(configError({ LATCHKEY_PUBLIC_URL: "ftp://x.test" }).message).toContain(
        "LATCHKEY_PUBLIC_URL",
      );
    });

    it("a session-duration ceiling below the shortest duration a user may pick (5 minutes)", () => {
      expect(configError({ LATCHKEY_MAX_SESSION_DURATION_SECONDS: "299" }).message).toBe(
        "Invalid configuration LATCHKEY_MAX_SESSION_DURATION_SECONDS: Expected integer to be greater or equal to 300",
      );
    });

    it("a password minimum above the maximum", () => {
      const err = configError({
        LATCHKEY_PASSWORD_MIN_LENGTH: "64",
        LATCHKEY_PASSWORD_MAX_LENGTH: "32",
      });
      expect(err.message).toContain("password.minLength");
    });

    // Regression: a bad proxy failed only `serve`, as "invalid IP address: 10.0.0.300".
    it.each(["10.0.0.300", "10.0.0.0/33", "proxy.internal"])("LATCHKEY_TRUST_PROXY=%s", (v) => {
      expect(configError({ LATCHKEY_TRUST_PROXY: `127.0.0.1,${v}` }).message).toBe(
        `Invalid configuration trustProxy: ${v} is not an IP address or CIDR range`,
      );
    });

    // Regression: any cookie Domain was taken, and browsers then dropped every cookie.
    it.each([
      ["https://example.com", "is not a domain name"],
      ["example.com:443", "is not a domain name"],
      ["other.com", "does not cover the publicUrl host auth.example.com"],
      ["ample.com", "does not cover the publicUrl host auth.example.com"],
    ])("LATCHKEY_COOKIE_DOMAIN=%s", (domain, problem) => {
      const err = configError({
        LATCHKEY_PUBLIC_URL: "https://auth.example.com",
        LATCHKEY_COOKIE_DOMAIN: domain,
      });
      expect(err.message).toMatch(
        new RegExp(`^Invalid configuration cookies\\.domain: ${domain} ${problem}`),
      );
    });

    // A /0 range would let any client name its own IP; HTTP's parser refused it unnamed too.
    it.each(["0.0.0.0/0", "::/0"])("LATCHKEY_TRUST_PROXY=%s, in every mode", (v) => {
      expect(configError({ LATCHKEY_TRUST_PROXY: `10.0.0.0/8,${v}` }).message).toBe(
        `Invalid configuration trustProxy: ${v} trusts every address, so any client could forge its IP`,
      );
    });

    it("takes a cookie Domain the public URL's host is on", () => {
      for (const domain of ["example.com", ".Example.com", "auth.example.com"]) {
        const c = loadConfig({
          LATCHKEY_PUBLIC_URL: "https://auth.example.com",
          LATCHKEY_COOKIE_DOMAIN: domain,
          LATCHKEY_TRUST_PROXY: "10.0.0.0/8, ::1, loopback",
        });
        expect(c.cookies.domain).toBe(domain);
      }
    });

    it("never echoes a secret value in the message", () => {
      const err = configError({ LATCHKEY_MASTER_KEY: "s3cret-but-short" });
      expect(err.message).not.toContain("s3cret-but-short");
    });
  });

  // Regression: numbers and booleans from the environment were coerced leniently
  // (TypeBox Value.Convert): "80.5" became port 80, "1e3" a 1-second TTL, "true" port 1.
  describe("regression: malformed numbers are refused, not truncated", () => {
    it.each([
      ["LATCHKEY_PORT", "80.5"],
      ["LATCHKEY_PORT", "true"],
      ["LATCHKEY_PORT", "8080abc"],
      ["LATCHKEY_ACCESS_TTL_SECONDS", "1e3"],
      ["LATCHKEY_ACCESS_TTL_SECONDS", "900.9"],
      ["LATCHKEY_SESSION_CACHE_MS", "0x10"],
    ])("%s=%s", (name, value) => {
      expect(configError({ [name]: value }).message).toContain(name);
    });

    it("a fractional or boolean number in the config file", () => {
      expect(configError(configFile("frac.json", { port: 80.5 })).message).toContain("port");
      expect(
        configError(configFile("bool.json", { tokens: { accessTtlSeconds: true } })).message,
      ).toContain("tokens.accessTtlSeconds");
    });

    it("an integer beyond 2^53, which would become another number", () => {
      expect(
        configError({ LATCHKEY_LOGIN_FAILURES_PER_IP: "99999999999999999999" }).message,
      ).toContain("LATCHKEY_LOGIN_FAILURES_PER_IP");
    });

    it("still accepts whole numbers with surrounding spaces", () => {
      expect(loadConfig({ LATCHKEY_PORT: " 9000 " }).port).toBe(9000);
    });
  });

  // Regression: a delay past Node's longest timer (2^31 - 1 ms, ~24.8 days) was run after
  // 1 ms: LATCHKEY_PURGE_INTERVAL_SECONDS=3000000 purged a thousand times a second, and a
  // long LATCHKEY_SHUTDOWN_TIMEOUT_SECONDS exited 1 on SIGTERM without draining. Lifetimes
  // had no ceiling: their expiry in milliseconds overflowed PostgreSQL's bigint.
  describe("regression: delays and lifetimes have a ceiling", () => {
    it.each([
      ["LATCHKEY_PURGE_INTERVAL_SECONDS", "3000000"],
      ["LATCHKEY_SHUTDOWN_TIMEOUT_SECONDS", "2147484"],
      ["LATCHKEY_PG_IDLE_TIMEOUT_MS", "2147483648"],
      ["LATCHKEY_PG_QUERY_TIMEOUT_MS", "2147483648"],
      ["LATCHKEY_REFRESH_TTL_SECONDS", String(10 * 365 * 86_400 + 1)],
      ["LATCHKEY_ACCESS_TTL_SECONDS", "9007199254740991"],
    ])("%s=%s", (name, value) => {
      expect(configError({ [name]: value }).message).toMatch(
        new RegExp(`^Invalid configuration ${name}: Expected integer to be less or equal to \\d+$`),
      );
    });

    it("a mail retry delay whose last doubling would not fit a timer", () => {
      const err = configError(configFile("retry.json", { mail: { retryDelayMs: 5_000_000 } }));
      expect(err.message).toContain("mail.retryDelayMs");
    });

    it("still accepts the longest timer and ten-year lifetimes", () => {
      const c = loadConfig({
        LATCHKEY_PURGE_INTERVAL_SECONDS: "2147483",
        LATCHKEY_REMEMBER_ME_TTL_SECONDS: String(10 * 365 * 86_400),
      });
      expect(c.purgeIntervalSeconds).toBe(2_147_483);
      expect(c.tokens.rememberMeTtlSeconds).toBe(315_360_000);
    });
  });

  describe("config file (LATCHKEY_CONFIG)", () => {
    it("supplies values, and the environment takes precedence", () => {
      const env = configFile("base.json", {
        port: 9000,
        host: "0.0.0.0",
        tokens: { accessTtlSeconds: 600, delivery: "body" },
        allowedOrigins: ["http://file.test"],
        tiers: { free: { projects: 3 }, pro: { projects: 50 } },
      });
      const fromFile = loadConfig(env);
      expect(fromFile).toMatchObject({
        port: 9000,
        host: "0.0.0.0",
        allowedOrigins: ["http://file.test"],
        tiers: { free: { projects: 3 }, pro: { projects: 50 } },
      });
      // Defaults still fill the keys the file leaves out of a section.
      expect(fromFile.tokens).toMatchObject({
        accessTtlSeconds: 600,
        delivery: "body",
        refreshTtlSeconds: 604_800,
      });

      const layered = loadConfig({
        ...env,
        LATCHKEY_PORT: "9100",
        LATCHKEY_TOKEN_DELIVERY: "cookie",
        LATCHKEY_ALLOWED_ORIGINS: "http://env.test",
      });
      expect(layered.port).toBe(9100);
      expect(layered.host).toBe("0.0.0.0");
      expect(layered.tokens).toMatchObject({ accessTtlSeconds: 600, delivery: "cookie" });
      expect(layered.allowedOrigins).toEqual(["http://env.test"]);
    });

    it("refuses an unknown key, naming it", () => {
      const err = configError(configFile("unknown.json", { port: 9000, prot: 1 }));
      expect(err.message).toContain("prot");
      const nested = configError(configFile("nested.json", { tokens: { accesTtl: 60 } }));
      expect(nested.message).toContain("tokens.accesTtl");
      // Names every object inherits are no settings either.
      const inherited = configError(configFile("inherited.json", { constructor: 1 }));
      expect(inherited.message).toContain("constructor");
    });

    it("names the file key of a bad value", () => {
      const err = configError(configFile("bad.json", { tokens: { delivery: "pigeon" } }));
      expect(err.message).toContain("tokens.delivery");
    });

    it("refuses a file that is not valid JSON", () => {
      const err = configError(configFile("broken.json", '{ "port": 9000, '));
      expect(err.message).toContain("LATCHKEY_CONFIG");
      expect(err.message).toMatch(/not valid JSON/);
    });

    it("refuses a file whose top level is not an object", () => {
      expect(configError(configFile("array.json", [1, 2])).message).toContain("LATCHKEY_CONFIG");
    });

    it("refuses a file that cannot be read", () => {
      const err = configError({ LATCHKEY_CONFIG: join(dir, "missing.json") });
      expect(err.message).toContain("LATCHKEY_CONFIG");
      expect(err.message).toContain("missing.json");
    });
  });

  describe("the result", () => {
    it("is frozen, all the way down", () => {
      const c = loadConfig({ LATCHKEY_ALLOWED_ORIGINS: "http://a.test" });
      expect(Object.isFrozen(c)).toBe(true);
      expect(Object.isFrozen(c.tokens)).toBe(true);
      expect(Object.isFrozen(c.cookies)).toBe(true);
      expect(Object.isFrozen(c.allowedOrigins)).toBe(true);
      expect(Object.isFrozen(c.tiers)).toBe(true);
      expect(() => {
        (c as { port: number }).port = 1;
      }).toThrow(TypeError);
      expect(() => {
        (c.tokens as { accessTtlSeconds: number }).accessTtlSeconds = 1;
      }).toThrow(TypeError);
      expect(() => (c.allowedOrigins as string[]).push("http://evil.test")).toThrow(TypeError);
      expect(c.port).toBe(8080);
    });

    it("does not share state with the overrides passed in", () => {
      const overrides = { allowedOrigins: ["http://a.test"] };
      const c = loadConfig({}, overrides);
      overrides.allowedOrigins.push("http://evil.test");
      expect(c.allowedOrigins).toEqual(["http://a.test"]);
    });
  });
});
