import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";

/**
 * DELETE /users/me. One statement removes the user and, by cascade, every session,
 * API token and MFA secret in the same transaction; every node then forgets what it
 * cached for the user. The audit trail keeps the user id.
 */
export async function deleteAccount(
  svc: Services,
  userId: string,
  client: ClientInfo,
): Promise<void> {
  await svc.store.users.delete(userId);
  svc.sessions.userChanged(userId);
  audit(svc, { type: "account_deleted", userId }, client);
}
