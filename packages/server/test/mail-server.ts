import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll } from "vitest";

/** One message as the SMTP server received it, decoded enough to read. */
export interface ReceivedMail {
  from: string;
  to: string[];
  subject: string;
  /** The whole message with quoted-printable soft breaks and escapes undone. */
  body: string;
  raw: string;
}

export interface MailServer {
  port: number;
  inbox: ReceivedMail[];
  /** Answer DATA with `code` (default 451, temporary) for the next `n` messages. */
  failNext(n: number, code?: number): void;
  /** Hold every DATA until `release()` (mail stuck in flight). */
  hold(): { release(): void };
  /** Messages to `address`, newest last. */
  to(address: string): ReceivedMail[];
  clear(): void;
  close(): Promise<void>;
}

export const SMTP_USER = "latchkey";
export const SMTP_PASSWORD = "smtp secret";

/** A real SMTP server on loopback (smtp-server), with AUTH, recording what it accepts. */
export async function startMailServer(): Promise<MailServer> {
  const inbox: ReceivedMail[] = [];
  let failures = 0;
  let failCode = 451;
  let gate: Promise<void> | undefined;
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) {
        return callback(null, { user: auth.username });
      }
      return callback(new Error("Invalid username or password"));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", async () => {
        await gate;
        if (failures > 0) {
          failures--;
          const err = Object.assign(new Error("Refused for the test"), { responseCode: failCode });
          return callback(err);
        }
        const raw = Buffer.concat(chunks).toString("utf8");
        inbox.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: decodeHeader(/^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(raw)?.[1] ?? ""),
          body: decodeQuotedPrintable(raw),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    inbox,
    failNext(n, code = 451) {
      failures = n;
      failCode = code;
    },
    hold() {
      let release = () => {};
      gate = new Promise((r) => {
        release = () => {
          gate = undefined;
          r();
        };
      });
      return { release };
    },
    to: (address) => inbox.filter((m) => m.to.includes(address)),
    clear: () => inbox.splice(0),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A mail server for the enclosing describe block. */
export function useMailServer(): { server: MailServer } {
  const holder = {} as { server: MailServer };
  beforeAll(async () => {
    holder.server = await startMailServer();
  });
  afterAll(async () => {
    await holder.server.close();
  });
  return holder;
}

/** Config that points Latchkey at `server`, retrying quickly. */
export const smtpConfig = (server: MailServer) => ({
  mail: {
    transport: "smtp" as const,
    from: "Acme <security@acme.test>",
    productName: "Acme",
    smtp: {
      host: "127.0.0.1",
      port: server.port,
      requireTls: false,
      user: SMTP_USER,
      password: SMTP_PASSWORD,
    },
    retryDelayMs: 5,
  },
});

/** The token in the first link to `<page>?token=` in a message. */
export function linkToken(mail: ReceivedMail, page: string): string {
  const match = new RegExp(`/ui/${page}\\?token=([A-Za-z0-9_%-]+)`).exec(mail.body);
  if (!match?.[1]) throw new Error(`no ${page} link in: ${mail.subject}`);
  return decodeURIComponent(match[1]);
}

function decodeQuotedPrintable(raw: string): string {
  return raw
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** RFC 2047 encoded words (nodemailer encodes non-ASCII subjects). */
function decodeHeader(value: string): string {
  return value
    .replace(/\r\n[ \t]/g, " ")
    .replace(/=\?utf-8\?([QB])\?([^?]*)\?=/gi, (_, enc: string, text: string) =>
      enc.toUpperCase() === "B"
        ? Buffer.from(text, "base64").toString("utf8")
        : decodeQuotedPrintable(text.replace(/_/g, " ")),
    );
}
