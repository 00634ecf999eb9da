import type { Config } from "../config/load.js";
import type { MailMessage, MailTransport } from "./transport.js";

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
      await transporter.sendMail({
        from: message.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
    },
    async close() {
      transporter.close();
    },
  };
}
