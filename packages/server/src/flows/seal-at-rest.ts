import type { SecretBox } from "../domain/secret-box.js";
import type { Store } from "../store/index.js";

/**
 * With a master key, seals what a start without one stored in clear: server secrets,
 * private signing keys and TOTP secrets. Otherwise setting LATCHKEY_MASTER_KEY on a
 * running deployment would leave the keys that mint access and refresh tokens readable
 * in the database and every backup of it. One transaction; each value is replaced only
 * while it is still the clear one, so nodes starting together seal it once. How many.
 */
export async function sealClearSecrets(store: Store, box: SecretBox): Promise<number> {
  if (!box.seals) return 0;
  const seal = (clear: string) => box.seal(clear);
  return store.transaction(async (tx) => {
    const secrets = await tx.secrets.sealClear(seal);
    const keys = await tx.signingKeys.sealClear(seal);
    // Only a server without the key stores TOTP secrets in clear, and that server made the
    // server secrets in clear too: with none of those left, skip reading every user at
    // each start (production requires the key, so every start would pay it).
    const totp = secrets > 0 ? await tx.users.sealClearTotpSecrets(seal) : 0;
    return secrets + keys + totp;
  });
}
