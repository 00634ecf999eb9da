import type { PostgresPool, PostgresPoolClient } from "kysely";
import type { CustomTypesConfig, Pool, PoolClient, QueryConfig } from "pg";
import { cannotConnect, noAnswer, within } from "../ops/connect.js";

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

/**
 * How long one query may wait for its answer (`postgresPool.queryTimeoutMs`). The 5 s above
 * bounds getting a connection; without this a database that went silent mid-query (a crash,
 * a network partition, a failover, a lock held by a stuck session) held the request, its
 * connection and the client for ever. 15 s is far above any query a request makes (they are
 * single-row lookups and writes by key) and below what a client or a proxy waits.
 *
 * It is pg's client-side `query_timeout`, not PostgreSQL's `statement_timeout`: a timer in
 * the server cannot fire when the server or the path to it is what went silent, which is the
 * case to end; and as a start-up parameter `statement_timeout` is refused by PgBouncer in
 * transaction mode (which the serverless section recommends), while a `SET` per connection
 * pins every RDS Proxy session. The connection a timed-out query ran on is destroyed, never
 * reused: its answer may still arrive, and would be read as the next query's. Closing it
 * also ends the server's transaction at its next read, so no lock it holds outlives it.
 *
 * Migrations and the purge job do not have this bound (`Db.longWork`): a migration building
 * an index on a large table, or a purge batch waiting for a lock, may take longer, and
 * cutting them short would fail a start or leave rows for an hour.
 */
export const PG_QUERY_TIMEOUT_MS = 15_000;

/** No connection to the database could be had (in time, or at all), or it stopped answering: retry later. */
export class DatabaseUnavailableError extends Error {
  override name = "DatabaseUnavailableError";
}

const PG_INT8 = 20;

export interface PostgresPoolOptions {
  max: number;
  idleTimeoutMs: number;
  /** Every connection's search_path (undefined: the server's default). */
  schema: string | undefined;
  /** PG_QUERY_TIMEOUT_MS unless the configuration says otherwise. */
  queryTimeoutMs: number;
}

/** One pg pool, seen two ways: its queries bounded by the query timeout, or not (long work). */
export interface PostgresPools {
  bounded: PostgresPool;
  longWork: PostgresPool;
  /**
   * Ends the pool under both. A view's own `end` does nothing: pg refuses a second end, and
   * Kysely calls it only for a view that ran a query (`migrate` uses only one).
   */
  end(): Promise<void>;
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
): Promise<PostgresPools> {
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
  const onSchema = options.schema
    ? searchPathSetter(options.schema, options.queryTimeoutMs)
    : undefined;
  await firstConnection(pool, url);
  const connect = async () => {
    const client = await pool.connect().catch((err: unknown) => {
      throw new DatabaseUnavailableError(`No database connection: ${causeOf(err)}`, {
        cause: err,
      });
    });
    if (onSchema) await onSchema(client);
    return client;
  };
  // The views' own end does nothing: the pool under both ends once, by `end` below.
  const endNothing = async () => {};
  return {
    bounded: {
      connect: async () => withQueryTimeout(await connect(), options.queryTimeoutMs),
      end: endNothing,
    },
    longWork: { connect, end: endNothing },
    end: () => pool.end(),
  };
}

/**
 * `client` with every query bounded by `timeoutMs` (pg's `query_timeout`). A query that
 * times out fails as DatabaseUnavailableError (503), and so does every later query on this
 * connection (a transaction's rollback would wait as long again); releasing it destroys it.
 */
function withQueryTimeout(client: PoolClient, timeoutMs: number): PostgresPoolClient {
  let silent: DatabaseUnavailableError | undefined;
  const query = async (text: string, values: ReadonlyArray<unknown>) => {
    if (silent) throw silent;
    try {
      // pg reads `query_timeout` from the query's config; its typings leave it out.
      const bounded: QueryConfig & { query_timeout: number } = {
        text,
        values: [...values],
        query_timeout: timeoutMs,
      };
      return await client.query(bounded);
    } catch (err) {
      if (!isReadTimeout(err)) throw err;
      silent = new DatabaseUnavailableError(
        `The database did not answer within ${timeoutMs / 1000} s`,
        { cause: err },
      );
      throw silent;
    }
  };
  return {
    // Kysely calls only the (sql, parameters) form: no cursor is configured.
    query: query as unknown as PostgresPoolClient["query"],
    // pg destroys a client released with an error instead of pooling it again.
    release: () => client.release(silent),
  };
}

/**
 * Sets a new connection's search_path before its first use. Not in the pool's "connect"
 * event: pg does not wait for a listener, so the caller's first query was sent while the
 * SET was still running (deprecated in pg 8, an error in pg 9). Not as the `options`
 * start-up parameter: PgBouncer refuses unknown start-up parameters (see PG_QUERY_TIMEOUT_MS).
 */
function searchPathSetter(schema: string, timeoutMs: number) {
  const done = new WeakSet<PoolClient>();
  return async (client: PoolClient) => {
    if (done.has(client)) return;
    try {
      await client.query({
        text: `set search_path to "${schema}"`,
        query_timeout: timeoutMs,
      } as QueryConfig);
    } catch (err) {
      client.release(err as Error); // destroyed, not pooled again
      throw new DatabaseUnavailableError(`No database connection: ${causeOf(err)}`, { cause: err });
    }
    done.add(client);
  };
}

/** pg rejects a query whose `query_timeout` ran out with this message and no code (client.js). */
function isReadTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === "Query read timeout";
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
    // Whichever of the two equal timers fired first, the same words.
    const cause = isConnectTimeout(err) ? noAnswer(PG_CONNECT_TIMEOUT_MS) : causeOf(err);
    throw cannotConnect("PostgreSQL", "DATABASE_URL", url, cause);
  }
}

/** pg-pool gives up on a connection past `connectionTimeoutMillis` with this message (index.js). */
function isConnectTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === "Connection terminated due to connection timeout";
}

/**
 * A refused connection to a name with IPv4 and IPv6 addresses (localhost) fails as an
 * AggregateError whose message is empty; its code still says what happened.
 */
function causeOf(err: unknown): string {
  const { message, code } = (err ?? {}) as { message?: string; code?: string };
  return message || code || String(err);
}
