import type { Compilable, CompiledQuery, Kysely } from "kysely";
import type { Database } from "./schema.js";

/** Stands in a query compiled once for the parameter `name`. */
class Slot {
  constructor(readonly name: string) {}
}

interface Compiled<R> {
  query: CompiledQuery<R>;
  /** For each bound value: the parameter it takes, or null for a constant of the query. */
  slots: Array<string | null>;
}

/**
 * A query whose shape never changes, built and compiled once per database, then run
 * with each call's values. Kysely otherwise builds and compiles every query on every
 * call: preparing the login path's two queries this way cut the main thread's time per
 * login by 12-16 % (bench/RESULTS.md).
 *
 * `build` may use its parameters only as values, never to choose a column or a
 * clause, so that the compiled SQL holds for any of them.
 */
export function prepared<P extends object, R>(
  build: (db: Kysely<Database>, params: P) => Compilable<R>,
): (db: Kysely<Database>, params: P) => Promise<R[]> {
  // Keyed by the dialect adapter, which a database shares with its transactions.
  const byAdapter = new WeakMap<object, Compiled<R>>();
  return async (db, params) => {
    const { adapter } = db.getExecutor();
    let compiled = byAdapter.get(adapter);
    if (!compiled) {
      const slots = new Proxy({}, { get: (_, name) => new Slot(String(name)) }) as P;
      const query = build(db, slots).compile();
      compiled = {
        query,
        slots: query.parameters.map((p) => (p instanceof Slot ? p.name : null)),
      };
      byAdapter.set(adapter, compiled);
    }
    const { query, slots } = compiled;
    const values = params as Record<string, unknown>;
    const parameters = slots.map((name, i) => (name === null ? query.parameters[i] : values[name]));
    return (await db.executeQuery<R>({ ...query, parameters })).rows;
  };
}
