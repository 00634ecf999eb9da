import type { IncomingMessage } from "node:http";
import { AuthError } from "../domain/errors.js";

/**
 * RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without a Host header
 * and to any request with more than one (HTTP/1.0 clients need not send one). The
 * refusal of this request, if it breaks that rule: `400 validation_failed` problem+json,
 * like every other error, from the first hook (cors.ts) and the WebSocket upgrade. Node's
 * own check (`requireHostHeader`, turned off in app.ts) answered an empty body no client
 * can read as a problem, let a repeated Host and every `Connection: Upgrade` request
 * through, and wrote no request line.
 */
export function hostHeaderRefusal(request: IncomingMessage): AuthError | undefined {
  let count = 0;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === "host") count++;
  }
  if (count > 1) return refusal("More than one Host header", "must be sent once");
  if (count === 0 && request.httpVersion === "1.1") {
    return refusal("Missing Host header", "is required in HTTP/1.1");
  }
  return undefined;
}

const refusal = (detail: string, message: string) =>
  new AuthError("validation_failed", detail, {
    errors: [{ path: "headers.host", message: `${message} (RFC 9112 §3.2)` }],
  });
