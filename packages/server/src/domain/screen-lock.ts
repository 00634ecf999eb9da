import { AuthError } from "./errors.js";
import type { User } from "./user.js";

/**
 * A guest may not screen-lock its session: it has no password, code or passkey that
 * POST /auth/unlock could check, so the session would be dead until it ends, and a guest
 * that gave no email would have no way back to its account at all. It may once upgraded.
 */
export function assertMayScreenLock(user: Pick<User, "guest">): void {
  if (user.guest) {
    throw new AuthError(
      "forbidden",
      "A guest cannot lock its session: it has nothing to unlock it with; upgrade the account first (POST /auth/guest/upgrade)",
    );
  }
}

/**
 * The idle limit that locks the user's sessions: none for a guest, whatever is stored (a
 * value a guest set before guests were refused it would otherwise still lock it out).
 */
export const idleLockMinutes = (user: Pick<User, "guest" | "screenLockMinutes">) =>
  user.guest ? null : user.screenLockMinutes;
