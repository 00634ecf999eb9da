import type { FastifyBaseLogger } from "fastify";
import {
  type MailMessage,
  type MailTransport,
  mailErrorCode,
  PermanentMailError,
} from "./transport.js";

export interface MailerOptions {
  from: string;
  maxAttempts: number;
  /** First retry delay; doubled for each further attempt. */
  retryDelayMs: number;
}

/** Counters for metrics (admin only): they move with mail to real accounts, so never public. */
export interface MailStats {
  transport: string;
  sent: number;
  failed: number;
  retried: number;
  pending: number;
  /** Codes only (e.g. `EENVELOPE 550`), never a transport's message. */
  lastError: string | null;
}

/** What /readyz shows: `failing` while the last message given up on has had no success since. */
export interface MailHealth {
  transport: string;
  status: "ok" | "failing";
}

/**
 * Sends mail off the request path. A request hands over a task and answers at
 * once, so neither the transport's latency nor whether a message was sent at all
 * shows in the response (no account enumeration by timing). Temporary failures
 * are retried a bounded number of times; every failure is logged and counted;
 * none fails the request whose effect caused the message. The queue lives in
 * memory: a crash loses the mail still in it (the links can be asked for again).
 */
export class Mailer {
  private readonly pending = new Set<Promise<void>>();
  private readonly counts = { sent: 0, failed: 0, retried: 0 };
  private lastError: string | null = null;
  private failing = false;

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

  health(): MailHealth {
    return { transport: this.transport.name, status: this.failing ? "failing" : "ok" };
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
        this.failing = false;
        return;
      } catch (err) {
        // Neither the recipient nor the transport's text (which often quotes it) is logged.
        const code = mailErrorCode(err);
        this.lastError = code;
        const context = { code, subject: message.subject, attempt };
        if (err instanceof PermanentMailError || attempt >= this.options.maxAttempts) {
          this.counts.failed++;
          this.failing = true;
          this.log.error(context, "mail not sent");
          return;
        }
        this.counts.retried++;
        this.log.warn(context, "mail failed; retrying");
        await new Promise((r) => setTimeout(r, this.options.retryDelayMs * 2 ** (attempt - 1)));
      }
    }
  }
}
