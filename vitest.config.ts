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
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Argon2 and the databases are real; two workers match the two cores here.
    maxWorkers: 2,
  },
});
