import type { FastifyBaseLogger } from "fastify";
import type { MailMessage, MailTransport } from "./transport.js";

export interface MailerOptions {
  from: string;
  maxAttempts: number;
  /** First retry delay; doubled for each further attempt. */
  retryDelayMs: number;
}

/** Counters for /readyz and metrics: mail trouble is visible without failing requests. */
export interface MailStats {
  transport: string;
  sent: number;
  failed: number;
  retried: number;
  pending: number;
  lastError: string | null;
}

/**
 * Sends mail off the request path. A request hands over a task and answers at
 * once, so neither the transport's latency nor whether a message was sent at all
 * shows in the response (no account enumeration by timing). Failures are
 * retried a bounded number of times, logged, and counted; they never fail the
 * request whose effect caused the message.
 */
export class Mailer {
  private readonly pending = new Set<Promise<void>>();
  private readonly counts = { sent: 0, failed: 0, retried: 0 };
  private lastError: string | null = null;

  constructor(
    readonly transport: MailTransport,
    private readonly options: MailerOptions,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Queues one message to `to`. */
  send(to: string, body: Omit<MailMessage, "from" | "to">): void {
    this.defer(() => this.deliver({ ...body, from: this.options.from, to }));
  }

  /** Runs `task` (lookups, token writes, sends) after the response; errors are logged. */
  defer(task: () => Promise<void>): void {
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(task)
      .catch((err: unknown) => this.log.error({ err }, "background mail task failed"))
      .finally(() => this.pending.delete(run));
    this.pending.add(run);
  }

  /** Waits for every queued task, including retries (shutdown, tests). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  stats(): MailStats {
    return {
      transport: this.transport.name,
      ...this.counts,
      pending: this.pending.size,
      lastError: this.lastError,
    };
  }

  async close(): Promise<void> {
    await this.flush();
    await this.transport.close?.();
  }

  private async deliver(message: MailMessage): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.transport.send(message);
        this.counts.sent++;
        return;
      } catch (err) {
        this.lastError = err instanceof Error ? err.message : String(err);
        if (attempt >= this.options.maxAttempts) {
          this.counts.failed++;
          // The recipient is personal data; the subject says which flow lost its mail.
          this.log.error({ err, subject: message.subject, attempts: attempt }, "mail not sent");
          return;
        }
        this.counts.retried++;
        this.log.warn({ err, subject: message.subject, attempt }, "mail failed; retrying");
        await new Promise((r) => setTimeout(r, this.options.retryDelayMs * 2 ** (attempt - 1)));
      }
    }
  }
}
