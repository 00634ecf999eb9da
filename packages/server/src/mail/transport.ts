/** One message, rendered, as every transport receives it. */
export interface MailMessage {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** The action link in the message, for the dev outbox's log line; never sent separately. */
  link?: string;
}

/**
 * Where mail goes. Three ship with Latchkey (SMTP, an HTTP API, the dev outbox); pass
 * your own to createApp({ mailTransport }) to use anything else. `send` rejects on
 * failure; the Mailer retries.
 */
export interface MailTransport {
  readonly name: string;
  send(message: MailMessage): Promise<void>;
  close?(): Promise<void>;
}

/** A refusal that retrying cannot fix (an SMTP 5xx reply, an API's 4xx): not retried. */
export class PermanentMailError extends Error {
  override name = "PermanentMailError";
}

/**
 * What went wrong, in a form fit for logs and metrics: codes only. Transport
 * messages often quote the recipient (`550 <ada@example.com>: no such user`).
 */
export function mailErrorCode(err: unknown): string {
  const e = err as { code?: unknown; responseCode?: unknown; status?: unknown };
  const parts = [e.code, e.responseCode ?? e.status].filter(
    (p) => typeof p === "string" || typeof p === "number",
  );
  return parts.length > 0 ? parts.join(" ") : err instanceof Error ? err.name : "unknown";
}
