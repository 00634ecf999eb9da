import { AuthError } from "../domain/errors.js";
import type { ClientInfo, Services } from "../services.js";
import { assertNotLastAdmin } from "./admin-users.js";
import { audit } from "./audit.js";

/**
 * DELETE /users/me. One statement removes the user and, by cascade, every session,
 * API token and MFA secret in the same transaction; every node then forgets what it
 * cached for the user. The audit trail keeps the user id. The last enabled admin
 * cannot leave, as through the admin API: nobody could administer the deployment after.
 */
export async function deleteAccount(
  svc: Services,
  userId: string,
  client: ClientInfo,
): Promise<void> {
  await svc.store.transaction(async (tx) => {
    const user = await tx.users.findById(userId);
    if (!user) throw new AuthError("user_not_found", "The account no longer exists");
    await assertNotLastAdmin(tx, user);
    await tx.users.delete(userId);
  });
  svc.sessions.userChanged(userId);
  audit(svc, { type: "account_deleted", userId }, client);
}
