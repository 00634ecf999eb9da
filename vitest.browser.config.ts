import { defineConfig } from "vitest/config";

/**
 * The browser suite (`npm run test:browser`): Chromium driven by playwright-core against
 * the built pages. Apart from `npm test`, which must not need Chromium; CI runs both.
 */
export default defineConfig({
  test: {
    include: ["packages/ui/test/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
  },
});
