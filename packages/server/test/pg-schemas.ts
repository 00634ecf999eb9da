import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * The PostgreSQL schemas of one test run. Each test app gets a schema of its own in the
 * `test` database; migrating a new one took ~0.4 s of every app's start, most of what the
 * PostgreSQL suite took over SQLite's. So a closed app's schema is emptied and handed to the
 * worker's next app, which finds it migrated (no migration inserts rows, so an emptied
 * schema is what migrating a new one gives). Names carry the run's id, and the run's
 * global teardown (pg-global-setup.ts) drops whatever its workers kept.
 */

export const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Set by the global setup; a run without it (a file run on its own) still gets unique names. */
const RUN = process.env.LATCHKEY_TEST_RUN ?? "solo";
/** Every schema a run's workers make starts with this (pg-global-setup.ts drops them). */
export const runSchemaPrefix = (run: string) => `t_${run}_`;

const emptied: Promise<string | undefined>[] = [];
let admin: Promise<pg.Client> | undefined;
let adminQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs `work` on the worker's one connection for this bookkeeping, after the work before
 * it (a pg client runs one query at a time). The connection does not keep the worker alive.
 */
function onAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  admin ??= (async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    (client as unknown as { connection: { stream: { unref(): void } } }).connection.stream.unref();
    return client;
  })();
  const run = adminQueue.then(async () => work(await (admin as Promise<pg.Client>)));
  adminQueue = run.catch(() => {});
  return run;
}

export const newSchemaName = () => `${runSchemaPrefix(RUN)}${randomBytes(6).toString("hex")}`;

/** Schemas a second node of a test deployment was started on. */
const shared = new Set<string>();

/** A second node was started on `schema`: it may still write there after the first closes. */
export const markShared = (schema: string) => shared.add(schema);

/** A migrated schema an earlier app of this worker left, emptied, if there is one. */
export async function takeEmptiedSchema(): Promise<string | undefined> {
  while (emptied.length > 0) {
    const schema = await emptied.pop();
    if (schema) return schema;
  }
  return undefined;
}

/**
 * Empties `schema` in the background for the next app (its close need not wait); one
 * that holds no migrated tables (the app failed to start) is dropped instead, and so is,
 * at once, one a second node shares (it is never handed on).
 */
export async function releaseSchema(schema: string): Promise<void> {
  if (shared.has(schema)) return dropSchema(schema);
  emptied.push(
    onAdmin(async (c) => {
      const { rows } = await c.query<{ tablename: string }>(
        "select tablename from pg_tables where schemaname = $1 and tablename not like 'kysely_migration%'",
        [schema],
      );
      if (rows.length === 0) {
        await c.query(`drop schema if exists ${schema} cascade`);
        return undefined;
      }
      // DELETE, not TRUNCATE: on tables this small it is ten times faster. Replica role:
      // the foreign keys need no order to delete in (the suite connects as a superuser).
      const deletes = rows.map((r) => `delete from ${schema}."${r.tablename}";`).join("\n");
      try {
        await c.query(`begin; set local session_replication_role = replica; ${deletes} commit;`);
      } catch (err) {
        await c.query("rollback"); // the failed statement left the transaction open
        throw err;
      }
      return schema;
    }).catch(() => undefined), // not reused then; the run's teardown drops it
  );
}

/** Drops `schema` now (a schema a test set up by hand, never reused). */
export async function dropSchema(schema: string): Promise<void> {
  await onAdmin((c) => c.query(`drop schema if exists ${schema} cascade`));
}
