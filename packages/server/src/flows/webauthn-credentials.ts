import { AuthError } from "../domain/errors.js";
import type { Passkey } from "../domain/webauthn.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";

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
 * DELETE /webauthn/credentials/:id (behind step-up). The last passkey of an account
 * without a password stays: it is the only way in.
 */
export async function deletePasskey(
  svc: Services,
  auth: Authenticated,
  id: string,
  client: ClientInfo,
): Promise<void> {
  const userId = auth.user.id;
  const user = await svc.store.users.findById(userId);
  if (!user?.passwordHash) {
    const passkeys = await svc.store.webauthn.listForUser(userId);
    if (passkeys.length === 1 && passkeys[0]?.id === id) {
      throw new AuthError("conflict", "This passkey is the account's only way to sign in");
    }
  }
  if (!(await svc.store.webauthn.delete(id, userId))) throw new AuthError("not_found", NOT_FOUND);
  audit(
    svc,
    { type: "passkey_deleted", userId, sessionId: auth.session.id, detail: { id } },
    client,
  );
}
