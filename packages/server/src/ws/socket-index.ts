import type { Connection } from "./connection.js";

/**
 * Open sockets by session and by user, so a revocation finds its sockets at once,
 * with a per-node cap on each. Sets keep insertion order: the first is the oldest.
 */
export class SocketIndex {
  private readonly bySession = new Map<string, Set<Connection>>();
  private readonly byUser = new Map<string, Set<Connection>>();

  constructor(
    private readonly maxPerSession: number,
    private readonly maxPerUser: number,
  ) {}

  /** Adds an authenticated socket; returns the oldest ones it pushes over a cap. */
  add(conn: Connection): Connection[] {
    const evicted = new Set([
      ...overflow(group(this.bySession, conn.sessionId), this.maxPerSession),
      ...overflow(group(this.byUser, conn.userId), this.maxPerUser),
    ]);
    for (const old of evicted) this.remove(old);
    group(this.bySession, conn.sessionId).add(conn);
    group(this.byUser, conn.userId).add(conn);
    return [...evicted];
  }

  remove(conn: Connection): void {
    ungroup(this.bySession, conn.sessionId, conn);
    ungroup(this.byUser, conn.userId, conn);
  }

  ofSession(sessionId: string): Connection[] {
    return [...(this.bySession.get(sessionId) ?? [])];
  }

  ofUser(userId: string): Connection[] {
    return [...(this.byUser.get(userId) ?? [])];
  }
}

function group(map: Map<string, Set<Connection>>, key: string): Set<Connection> {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}

function ungroup(map: Map<string, Set<Connection>>, key: string, conn: Connection): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(conn);
  if (set.size === 0) map.delete(key);
}

/** The oldest members that must go so one more fits under `max`. */
function overflow(set: Set<Connection>, max: number): Connection[] {
  return [...set].slice(0, Math.max(0, set.size + 1 - max));
}
