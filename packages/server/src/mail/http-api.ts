import type { Config } from "../config/load.js";
import { type MailMessage, type MailTransport, PermanentMailError } from "./transport.js";

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A Mailjet-style send API (v3.1 JSON, HTTP basic auth); most providers offer
 * this shape or a compatible endpoint.
 */
export function httpApiTransport(http: Config["mail"]["http"]): MailTransport {
  const auth = `Basic ${Buffer.from(`${http.apiKey}:${http.apiSecret}`).toString("base64")}`;
  return {
    name: "http",
    async send(message: MailMessage) {
      const response = await fetch(http.url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: auth },
        body: JSON.stringify({ Messages: [toApiMessage(message)] }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (!response.ok) {
        // The body may echo the message; the status alone says what went wrong.
        await response.body?.cancel();
        const { status } = response;
        const retryable = status >= 500 || status === 408 || status === 429;
        const Failure = retryable ? Error : PermanentMailError;
        throw Object.assign(new Failure(`mail API answered ${status}`), { code: "HTTP", status });
      }
      await response.body?.cancel();
    },
  };
}

function toApiMessage(message: MailMessage) {
  const from = parseAddress(message.from);
  return {
    From: { Email: from.email, ...(from.name ? { Name: from.name } : {}) },
    To: [{ Email: message.to }],
    Subject: message.subject,
    TextPart: message.text,
    HTMLPart: message.html,
  };
}

/** `Name <addr@host>` or a bare address. */
function parseAddress(value: string): { email: string; name?: string } {
  const match = /^\s*(.*?)\s*<([^>]+)>\s*$/.exec(value);
  if (!match) return { email: value.trim() };
  const name = match[1]?.replace(/^"|"$/g, "");
  return { email: match[2] as string, ...(name ? { name } : {}) };
}
