import { AuthError } from "../domain/errors.js";
import type { Passkey } from "../domain/webauthn.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { noticeSecurityChange } from "./notices.js";

const NOT_FOUND = "No such passkey";

export const listPasskeys = (svc: Services, auth: Authenticated): Promise<Passkey[]> =>
  svc.store.webauthn.listForUser(auth.user.id);

/** PATCH /webauthn/credentials/:id: only the user's own passkey; others are "not found". */
export async function renamePasskey(
  svc: Services,
  auth: Authenticated,
  id: string,
  name: string,
  client: ClientInfo,
): Promise<Passkey> {
  const passkey = await svc.store.webauthn.rename(id, auth.user.id, name.trim());
  if (!passkey) throw new AuthError("not_found", NOT_FOUND);
  audit(svc, { type: "passkey_renamed", userId: auth.user.id, detail: { id } }, client);
  return passkey;
}

/**
 * DELETE /webauthn/credentials/:id (behind step-up). A passkey that is the account's
 * only way in (no password, no federated identity, no other passkey) stays. Checked
 * and deleted with the user's row held, so two deletions cannot both pass the check.
 * The owner is mailed, as for an added one: a takeover must not strip ways in unseen.
 */
export async function deletePasskey(
  svc: Services,
  auth: Authenticated,
  id: string,
  client: ClientInfo,
): Promise<void> {
  const userId = auth.user.id;
  const deleted = await svc.store.transaction(async (tx) => {
    await tx.lockUser(userId);
    const user = await tx.users.findById(userId);
    const passkeys = await tx.webauthn.listForUser(userId);
    const passkey = passkeys.find((p) => p.id === id);
    if (!passkey) throw new AuthError("not_found", NOT_FOUND);
    const identities = await tx.identities.listForUser(userId);
    if (!user?.passwordHash && identities.length === 0 && passkeys.length === 1) {
      throw new AuthError("conflict", "This passkey is the account's only way to sign in");
    }
    await tx.webauthn.delete(id, userId);
    return passkey;
  });
  audit(
    svc,
    { type: "passkey_deleted", userId, sessionId: auth.session.id, detail: { id } },
    client,
  );
  noticeSecurityChange(svc, auth.user, `The passkey named "${deleted.name}" was removed.`, client);
}
