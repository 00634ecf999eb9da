import { LatchkeyError } from "./errors.js";

/**
 * What a `POST /auth/refresh` that did not succeed means for whoever waited on it. Decided
 * here alone, so that `fetch` and the socket treat the same answer the same way.
 * - `ended`: 401 (`session_revoked`, `refresh_token_reused`, `token_expired`, ...): the
 *   session is over; forget it and tell the app once.
 * - `locked`: 423 `screen_locked`: the session lives, the app asks the user to unlock.
 * - `refused`: any other 4xx (403 `ip_not_allowed`, `account_disabled`, `csrf_rejected`;
 *   400): the same request would be refused again, so trying again is a loop against a
 *   server that said no. The session is not over on the server (the rule may be lifted).
 * - `transient`: no answer (network), 408, 429 or 5xx (a proxy, an overloaded or restarting
 *   server, a database gone for a moment): the same request may pass later.
 */
export type RefreshFailure = "ended" | "locked" | "refused" | "transient";

const REQUEST_TIMEOUT = 408;
const TOO_MANY_REQUESTS = 429;

export function refreshFailure(err: unknown): RefreshFailure {
  if (!(err instanceof LatchkeyError)) return "transient";
  const { status, code } = err;
  if (status === 401) return "ended";
  if (status === 423 && code === "screen_locked") return "locked";
  if (status === REQUEST_TIMEOUT || status === TOO_MANY_REQUESTS || status >= 500) {
    return "transient";
  }
  return "refused";
}
