import { configDefaults, defineConfig } from "vitest/config";

const onPostgres = process.env.LATCHKEY_TEST_DB === "postgres";

export default defineConfig({
  test: {
    include: [
      "packages/*/test/*.test.ts",
      // Several nodes sharing one deployment need PostgreSQL and Redis.
      ...(onPostgres ? ["packages/*/test/multi-node/*.test.ts"] : []),
    ],
    // Chromium tests: `npm run test:browser` (vitest.browser.config.ts).
    exclude: [...configDefaults.exclude, "packages/ui/test/**"],
    // Names the run's PostgreSQL schemas, and drops those its workers kept (pg-schemas.ts).
    globalSetup: ["packages/server/test/pg-global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Argon2 and the databases are real; two workers match the two cores here.
    maxWorkers: 2,
    // Files share a worker's modules: loading the server's anew for each file took over half
    // of the SQLite suite's time. No test changes a module's state; each builds its own app.
    isolate: false,
  },
});
