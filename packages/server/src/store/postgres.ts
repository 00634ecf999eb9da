import type { PostgresPool } from "kysely";
import type { CustomTypesConfig, Pool } from "pg";
import { cannotConnect, within } from "../ops/connect.js";

/**
 * How long getting a PostgreSQL connection may take, at start and on every request. A
 * server that accepts and never answers (a wrong service, a half-open firewall, a
 * failover in progress) would otherwise hold the start, and `serve`, for ever.
 *
 * It bounds the whole pool, not only the first connection: without it a request that
 * finds every connection busy, or a database that stopped answering, waits for ever,
 * holding its socket and memory, and /readyz hangs instead of failing, so a load
 * balancer keeps sending traffic. With it such a request ends in 5 s with 503
 * `service_unavailable` (DatabaseUnavailableError), which a client may retry, and
 * /readyz answers 503. The price: a burst that queues more than 5 s of database work
 * gets 503s for the excess instead of slower answers, which an auth server's clients
 * would mostly have given up on by then anyway.
 */
export const PG_CONNECT_TIMEOUT_MS = 5_000;

/** No connection to the database could be had (in time, or at all): retry later. */
export class DatabaseUnavailableError extends Error {
  override name = "DatabaseUnavailableError";
}

const PG_INT8 = 20;

export interface PostgresPoolOptions {
  max: number;
  idleTimeoutMs: number;
  /** Every connection's search_path (undefined: the server's default). */
  schema: string | undefined;
}

/**
 * A pg pool for Kysely whose first connection is made now: a start fails within
 * PG_CONNECT_TIMEOUT_MS with one line that names DATABASE_URL, the host (never the
 * password) and the cause. Loaded only when used: a SQLite deployment never pays pg's
 * start-up time or memory.
 */
export async function openPostgresPool(
  url: string,
  options: PostgresPoolOptions,
): Promise<PostgresPool> {
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max,
    idleTimeoutMillis: options.idleTimeoutMs,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    // Epoch-millisecond columns are bigint; they fit a JS number exactly.
    types: {
      getTypeParser: (oid: number, format?: "text" | "binary") =>
        oid === PG_INT8 ? Number : pg.types.getTypeParser(oid, format as "text"),
    } as CustomTypesConfig,
  });
  // A connection that dies while idle (server restart, a function instance thawed after
  // its socket was dropped) is removed by pg; without a listener Node would crash instead.
  pool.on("error", () => {});
  const { schema } = options;
  if (schema) {
    pool.on("connect", (client) => {
      client.query(`set search_path to "${schema}"`).catch(() => {});
    });
  }
  await firstConnection(pool, url);
  return {
    connect: () =>
      pool.connect().catch((err: unknown) => {
        throw new DatabaseUnavailableError(`No database connection: ${causeOf(err)}`, {
          cause: err,
        });
      }),
    end: () => pool.end(),
  };
}

async function firstConnection(pool: Pool, url: string): Promise<void> {
  // pg's own timer, as long, ends this attempt too; its outcome is no longer wanted then.
  const connecting = pool.connect();
  try {
    (await within(connecting, PG_CONNECT_TIMEOUT_MS)).release();
  } catch (err) {
    connecting.then(
      (client) => client.release(),
      () => {},
    );
    await pool.end().catch(() => {});
    throw cannotConnect("PostgreSQL", "DATABASE_URL", url, causeOf(err));
  }
}

/**
 * A refused connection to a name with IPv4 and IPv6 addresses (localhost) fails as an
 * AggregateError whose message is empty; its code still says what happened.
 */
function causeOf(err: unknown): string {
  const { message, code } = (err ?? {}) as { message?: string; code?: string };
  return message || code || String(err);
}
