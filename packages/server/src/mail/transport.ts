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
