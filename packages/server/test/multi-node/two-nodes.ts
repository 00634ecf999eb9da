import { afterAll, beforeAll } from "vitest";
import { startTestApp, type TestApp } from "../helpers.js";

/**
 * Two nodes of one deployment for the enclosing describe: the same PostgreSQL schema
 * and Redis namespace, started before its tests and closed after them.
 */
export function useTwoNodes(): { a: TestApp; b: TestApp } {
  const nodes = {} as { a: TestApp; b: TestApp };
  beforeAll(async () => {
    nodes.a = await startTestApp();
    nodes.b = await startTestApp({}, { shareWith: nodes.a });
  });
  afterAll(async () => {
    await nodes.b.close();
    await nodes.a.close();
  });
  return nodes;
}
