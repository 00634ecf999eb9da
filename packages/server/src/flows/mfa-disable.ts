import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { noticeSecurityChange } from "./notices.js";

/**
 * MFA off (behind step-up): the secret and every backup code go in one
 * transaction. Idempotent: with MFA already off it only drops a pending setup.
 */
export async function disableTotp(svc: Services, user: User, client: ClientInfo): Promise<void> {
  await svc.store.transaction(async (tx) => {
    await tx.users.disableMfa(user.id, svc.clock.now());
    await tx.backupCodes.deleteForUser(user.id);
  });
  svc.sessions.userChanged(user.id);
  if (user.mfaEnabled) {
    audit(svc, { type: "mfa_disabled", userId: user.id }, client);
    noticeSecurityChange(svc, user, "Two-factor authentication was turned off.", client);
  }
}
