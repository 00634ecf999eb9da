/**
 * Reaching the services a start depends on (PostgreSQL, Redis). A port that accepts and
 * never answers (a wrong service, a half-open firewall) would otherwise hold the start,
 * and `serve`, for ever; a failure must name the setting to fix, not only the socket's error.
 */

/** What a start says of a service that did not answer in time. */
export const noAnswer = (timeoutMs: number) => `no answer within ${timeoutMs / 1000} s`;

/** `attempt`, or an error once `timeoutMs` has passed without it settling. */
export async function within<T>(attempt: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(noAnswer(timeoutMs))), timeoutMs);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The one line a start fails with: the service, its setting and host (never the password), the cause. */
export function cannotConnect(service: string, setting: string, url: string, cause: string): Error {
  const host = URL.canParse(url) ? new URL(url).host : "unparsable URL";
  return new Error(`Cannot connect to ${service} (${setting}, ${host}): ${cause}`);
}
