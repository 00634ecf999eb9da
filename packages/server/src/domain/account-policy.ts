import { AuthError } from "./errors.js";
import { isIpAllowed } from "./ip-rules.js";
import type { User } from "./user.js";

/**
 * The checks every way in shares (sign-in, MFA step, guest return, refresh, access
 * token, API token): the account is enabled and the caller's address is allowed.
 */
export function assertAccountUsable(user: Pick<User, "disabled" | "allowedIps">, ip: string): void {
  if (user.disabled) throw new AuthError("account_disabled", "The account is disabled");
  if (!isIpAllowed(ip, user.allowedIps)) {
    throw new AuthError("ip_not_allowed", "This account does not accept requests from your IP");
  }
}

/**
 * A guest with an email comes back by that email alone, so whoever knows it holds a session
 * as fresh as the owner's (and passes step-up: a guest has nothing to check). What such a
 * session adds that outlives the upgrade ending it (a linked provider, an API token) would
 * act on the owner's full account: it must upgrade first.
 */
export function assertMayAddLastingAccess(
  user: Pick<User, "guest" | "guestEmail">,
  what: string,
): void {
  if (user.guest && user.guestEmail !== null) {
    throw new AuthError(
      "forbidden",
      `A guest that signs in by email cannot ${what}; upgrade the account first`,
    );
  }
}
