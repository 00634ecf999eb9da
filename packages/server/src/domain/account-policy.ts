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
