import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import type { MailMessage, MailTransport } from "./transport.js";

/**
 * Development default: each message becomes an .eml file (open it in any mail
 * client) and one log line with its link, so the quick start needs no mail server.
 */
export function outboxTransport(dir: string, log: FastifyBaseLogger): MailTransport {
  let sequence = 0;
  return {
    name: "outbox",
    async send(message: MailMessage) {
      const { createTransport } = await import("nodemailer");
      const composer = createTransport({ streamTransport: true, buffer: true });
      const info = await composer.sendMail({
        from: message.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
      await mkdir(dir, { recursive: true });
      sequence += 1;
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      const file = join(dir, `${stamp}-${sequence}.eml`);
      await writeFile(file, info.message as Buffer);
      log.info(
        { to: message.to, subject: message.subject, file, link: message.link },
        `mail written to the outbox: ${message.subject}`,
      );
    },
  };
}
