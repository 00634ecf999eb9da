import { randomBytes } from "node:crypto";
import pg from "pg";
import { PG_URL, runSchemaPrefix } from "./pg-schemas.js";

/**
 * Names this run (its workers name their PostgreSQL schemas after it) and, once every file
 * has run, drops the schemas its workers kept for reuse (pg-schemas.ts). Not a schema of
 * another run: two runs may share the database.
 */
export default function setup() {
  const run = randomBytes(4).toString("hex");
  process.env.LATCHKEY_TEST_RUN = run;
  return async function teardown() {
    if (process.env.LATCHKEY_TEST_DB !== "postgres") return;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ nspname: string }>(
        "select nspname from pg_namespace where starts_with(nspname, $1)",
        [runSchemaPrefix(run)],
      );
      for (const { nspname } of rows) await client.query(`drop schema "${nspname}" cascade`);
    } finally {
      await client.end();
    }
  };
}
