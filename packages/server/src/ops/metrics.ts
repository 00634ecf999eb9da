import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { AuditType } from "../store/audit.js";
import { RequestDurations, type RouteRecorder } from "./request-durations.js";

/** The active-sessions count is a table scan on a large database: at most one per this interval. */
export const ACTIVE_SESSIONS_MAX_AGE_MS = 15_000;

/** Login outcomes, as the audit trail names them. */
const LOGIN_OUTCOMES: Partial<Record<AuditType, string>> = {
  login_succeeded: "success",
  login_failed: "failure",
  login_rate_limited: "rate_limited",
};

/** Rate limits that refused a request, as the audit trail names them. */
const RATE_LIMITS: Partial<Record<AuditType, string>> = {
  login_rate_limited: "login",
  mfa_rate_limited: "second_factor",
};

let processMetrics: Registry | undefined;

/**
 * prom-client's default metrics describe the process, and each collector installs
 * observers that live as long as it does: one set per process, however many servers.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: "latchkey_" });
  }
  return processMetrics;
}

/**
 * Prometheus metrics of one server, in a registry of its own (never prom-client's
 * global one), so several servers in one process (tests, embedding) stay apart.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new RequestDurations();
  private readonly events: Counter<"type">;
  readonly logins: Counter<"outcome">;
  readonly refreshes: Counter<"result">;
  readonly reuseDetections: Counter;
  readonly rateLimited: Counter<"limit">;
  private readonly passwordHash: Histogram<"operation">;
  private activeSessions: { value: number; at: number; pending?: Promise<number> } = {
    value: 0,
    at: Number.NEGATIVE_INFINITY,
  };

  constructor(countActiveSessions: () => Promise<number>, now: () => number) {
    const registers = [this.registry];
    this.events = new Counter({
      name: "latchkey_security_events_total",
      help: "Security events recorded in the audit log, by type",
      labelNames: ["type"],
      registers,
    });
    this.logins = new Counter({
      name: "latchkey_logins_total",
      help: "Sign-ins by outcome, every way in (success, mfa_required, failure, rate_limited)",
      labelNames: ["outcome"],
      registers,
    });
    this.refreshes = new Counter({
      name: "latchkey_refreshes_total",
      help: "Successful refresh-token rotations (rotated; grace: a concurrent refresh got the same successor)",
      labelNames: ["result"],
      registers,
    });
    this.reuseDetections = new Counter({
      name: "latchkey_refresh_reuse_detected_total",
      help: "Refresh tokens presented again after rotation; each revoked its session",
      registers,
    });
    this.rateLimited = new Counter({
      name: "latchkey_rate_limited_total",
      help: "Requests refused by a rate limit (public, login, second_factor)",
      labelNames: ["limit"],
      registers,
    });
    this.passwordHash = new Histogram({
      name: "latchkey_password_hash_duration_seconds",
      help: "Argon2id work per operation (hash, verify)",
      labelNames: ["operation"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    const metrics = this;
    new Gauge({
      name: "latchkey_active_sessions",
      help: `Sessions neither revoked nor expired (counted at most every ${ACTIVE_SESSIONS_MAX_AGE_MS / 1000} s)`,
      registers,
      async collect() {
        this.set(await metrics.activeSessionCount(countActiveSessions, now()));
      },
    });
  }

  /** Times the requests of one route pattern (the users/me hot path pays this and nothing else). */
  requestRecorder(route: string): RouteRecorder {
    return this.requests.recorder(route);
  }

  observePasswordHash(operation: "hash" | "verify", ms: number): void {
    this.passwordHash.observe({ operation }, ms / 1000);
  }

  /** Every audited event also counts here, so logins, lockouts and reuse need no second hook. */
  recordEvent(type: AuditType): void {
    this.events.inc({ type });
    const outcome = LOGIN_OUTCOMES[type];
    if (outcome) this.logins.inc({ outcome });
    const limit = RATE_LIMITS[type];
    if (limit) this.rateLimited.inc({ limit });
    if (type === "refresh_token_reused") this.reuseDetections.inc();
  }

  /** This server's metrics and the process's (CPU, memory, event-loop lag, GC). */
  async render(): Promise<string> {
    const registered = await Registry.merge([this.registry, processRegistry()]).metrics();
    return `${registered}\n${this.requests.render()}`;
  }

  /** Scrapes share one query in flight, and its answer for ACTIVE_SESSIONS_MAX_AGE_MS. */
  private async activeSessionCount(count: () => Promise<number>, now: number): Promise<number> {
    const cached = this.activeSessions;
    if (now - cached.at < ACTIVE_SESSIONS_MAX_AGE_MS) return cached.value;
    cached.pending ??= count().finally(() => {
      cached.pending = undefined;
    });
    cached.value = await cached.pending;
    cached.at = now;
    return cached.value;
  }
}
