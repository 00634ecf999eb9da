import type { Config } from "../config/load.js";
import { type MailMessage, type MailTransport, PermanentMailError } from "./transport.js";

/** SMTP through nodemailer, loaded only when configured. */
export async function smtpTransport(smtp: Config["mail"]["smtp"]): Promise<MailTransport> {
  const { createTransport } = await import("nodemailer");
  const transporter = createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: !smtp.secure && smtp.requireTls,
    ...(smtp.user ? { auth: { user: smtp.user, pass: smtp.password ?? "" } } : {}),
  });
  return {
    name: "smtp",
    async send(message: MailMessage) {
      try {
        await transporter.sendMail({
          from: message.from,
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
        });
      } catch (err) {
        // RFC 5321 4.2.1: 5yz replies are permanent; 4yz and lost connections are worth a retry.
        const code = (err as { responseCode?: number }).responseCode;
        if (code !== undefined && code >= 500) {
          throw Object.assign(new PermanentMailError(`SMTP ${code}`), {
            code: (err as { code?: string }).code,
            responseCode: code,
          });
        }
        throw err;
      }
    },
    async close() {
      transporter.close();
    },
  };
}
