import { ipLimitKey } from "../domain/ip-rules.js";
import type { Services } from "../services.js";

/** Matches no user: unknown names run the same query as accounts (see nameLimitKey). */
const NO_USER = "";

/**
 * The per-account bucket a sign-in attempt counts in. A lock anyone can trigger is one
 * the owner cannot get past (OWASP Authentication Cheat Sheet, "Account Lockout"): five
 * wrong passwords a window from anywhere would keep them out for good. So an address the
 * account has signed in from before counts in a bucket of its own (the idea of OWASP's
 * "device cookies", keyed by what the server saw rather than by a new cookie): strangers
 * fill the account's bucket and leave the owner's address alone, while guesses from
 * any one address stay bounded by the same limit (and by the per-IP one).
 */
export async function accountLimitKey(svc: Services, userId: string, ip: string): Promise<string> {
  const known = await svc.store.sessions.existsFrom(userId, ip);
  return known ? `user:${userId}@${ipLimitKey(ip)}` : `user:${userId}`;
}

/** The bucket of a name no account has; the same lookup, so its timing matches an account's. */
export async function nameLimitKey(svc: Services, name: string, ip: string): Promise<string> {
  await svc.store.sessions.existsFrom(NO_USER, ip);
  return `name:${name}`;
}
