import type { Services } from "../services.js";
import type { Store } from "../store/index.js";

/**
 * Pre-account-takeover defence (Sudhodanan & Paverd, 2022): the account's email was
 * never proven, and now its owner proves it. Whoever set the account up may be an
 * attacker who typed someone else's address and waits for the owner to arrive: the
 * ways in they left (a password, a provider that did not vouch for the address,
 * passkeys, API tokens) and every session end here, in the caller's transaction
 * (IdentityStore.resetUnprovenAccount); the address counts as verified from now on.
 * `keepMfa` for a mailed link: a mailbox alone must not get past a second factor.
 * False (nothing done) when the address was verified already.
 */
export async function claimUnprovenAccount(
  svc: Services,
  tx: Store,
  userId: string,
  options: { keepMfa?: boolean } = {},
): Promise<boolean> {
  if (!(await tx.identities.resetUnprovenAccount(userId, svc.clock.now(), options))) return false;
  await svc.sessions.revokeAllForUser(userId, "email_claimed", undefined, tx);
  return true;
}
