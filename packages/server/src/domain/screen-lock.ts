import { AuthError } from "./errors.js";
import type { User } from "./user.js";

type LockFacts = Pick<User, "guest" | "passwordHash" | "mfaEnabled">;

/**
 * POST /auth/unlock checks a password or an MFA code; an account with neither (a guest,
 * or one that signs in only through a provider) could never lift a lock, and its session
 * would be dead until it ends.
 */
const canUnlock = (user: LockFacts) => user.passwordHash !== null || user.mfaEnabled;

/** Refuses a screen lock (now, or on idle) to an account that could not unlock it. */
export function assertMayScreenLock(user: LockFacts): void {
  if (user.guest) {
    throw new AuthError(
      "forbidden",
      "A guest cannot lock its session: it has nothing to unlock it with; upgrade the account first (POST /auth/guest/upgrade)",
    );
  }
  if (!canUnlock(user)) {
    throw new AuthError(
      "forbidden",
      "This account cannot lock its sessions: unlocking takes a password or an MFA code, and it has neither",
    );
  }
}

/**
 * The idle limit that locks the user's sessions: none for an account that could not unlock,
 * whatever is stored (a value set before the rule, or before MFA was turned off, would
 * otherwise still lock it out).
 */
export const idleLockMinutes = (user: LockFacts & Pick<User, "screenLockMinutes">) =>
  canUnlock(user) ? user.screenLockMinutes : null;
