import { randomBytes } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { createApp } from "../src/app.js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { freshDatabase } from "./helpers.js";

/** Log lines as objects, from a real pino logger. */
function capturedLog() {
  const lines: Array<{ level: number; msg: string; unknownVariables?: string[] }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

const WARN = 40;

// Regression: LATCHKEY_* variables that name no setting were ignored without a word, so a
// typo (LATCHKEY_ACCES_TTL_SECONDS=60) left the 15-minute default in place.
describe("unknown LATCHKEY_* environment variables", () => {
  it("are listed, each with the known name it is a likely typo of", () => {
    const config = loadConfig({
      LATCHKEY_ACCES_TTL_SECONDS: "60",
      LATCHKEY_REDIS_URL: "redis://127.0.0.1:6379",
      latchkey_port: "9000",
      LATCHKEY_FEATURE_OF_A_NEWER_VERSION: "on",
      LATCHKEY_PORT: "9001",
      LATCHKEY_CONFIG: "",
      PATH: "/usr/bin",
    });
    expect(config.tokens.accessTtlSeconds).toBe(900); // ignored, not refused
    expect(config.port).toBe(9001);
    expect(config.unknownVariables).toEqual([
      { name: "LATCHKEY_ACCES_TTL_SECONDS", meant: "LATCHKEY_ACCESS_TTL_SECONDS" },
      { name: "LATCHKEY_FEATURE_OF_A_NEWER_VERSION" },
      { name: "LATCHKEY_REDIS_URL", meant: "REDIS_URL" },
      { name: "latchkey_port", meant: "LATCHKEY_PORT" },
    ]);
    expect(loadConfig({ LATCHKEY_PORT: "9001" }).unknownVariables).toEqual([]);
  });

  it("are named in one warning line when the server starts", async () => {
    const database = await freshDatabase();
    const { logger, lines } = capturedLog();
    const config = loadConfig(
      { LATCHKEY_ACCES_TTL_SECONDS: "60", LATCHKEY_FEATURE_OF_A_NEWER_VERSION: "on" },
      { databaseUrl: database.url, databaseSchema: database.schema, dataDir: database.dataDir },
    );
    const app = await createApp(config, { logger });
    try {
      const warnings = lines.filter((l) => l.level === WARN);
      expect(warnings).toEqual([
        expect.objectContaining({
          msg: "Ignoring unknown environment variables: LATCHKEY_ACCES_TTL_SECONDS (did you mean LATCHKEY_ACCESS_TTL_SECONDS?), LATCHKEY_FEATURE_OF_A_NEWER_VERSION",
          unknownVariables: ["LATCHKEY_ACCES_TTL_SECONDS", "LATCHKEY_FEATURE_OF_A_NEWER_VERSION"],
        }),
      ]);
    } finally {
      await app.close();
      await database.drop();
    }
  });

  it("are warned of before a start that a typo made fail", async () => {
    const { logger, lines } = capturedLog();
    const config = loadConfig({
      LATCHKEY_MODE: "production",
      LATCHKEY_PUBLIC_URL: "https://auth.example.com",
      LATCHKEY_MASTR_KEY: randomBytes(32).toString("base64"),
      DATABASE_URL: "sqlite::memory:",
    });
    await expect(createApp(config, { logger })).rejects.toBeInstanceOf(ConfigError);
    expect(lines.map((l) => l.msg)).toContain(
      "Ignoring unknown environment variables: LATCHKEY_MASTR_KEY (did you mean LATCHKEY_MASTER_KEY?)",
    );
  });
});
