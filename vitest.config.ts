import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Argon2 and the databases are real; two workers match the two cores here.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
