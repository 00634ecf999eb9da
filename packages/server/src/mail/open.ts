import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import { httpApiTransport } from "./http-api.js";
import { outboxTransport } from "./outbox.js";
import { smtpTransport } from "./smtp.js";
import type { MailTransport } from "./transport.js";

/** The configured transport (`mail.transport`). */
export async function openTransport(
  config: Config,
  log: FastifyBaseLogger,
): Promise<MailTransport> {
  switch (config.mail.transport) {
    case "smtp":
      return smtpTransport(config.mail.smtp);
    case "http":
      return httpApiTransport(config.mail.http);
    case "outbox":
      return outboxTransport(join(config.dataDir, "outbox"), log);
  }
}
