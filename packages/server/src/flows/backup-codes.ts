import { generateBackupCodes } from "../domain/backup-codes.js";
import { AuthError } from "../domain/errors.js";
import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import type { Store } from "../store/index.js";
import { audit } from "./audit.js";
import { noticeSecurityChange } from "./notices.js";

/** A new set in the caller's transaction; the old set, used or not, is void. Shown once. */
export async function replaceBackupCodes(svc: Services, tx: Store, userId: string) {
  const codes = generateBackupCodes();
  const hashes = codes.map((code) => svc.backupCodes.hash(userId, code));
  await tx.backupCodes.replace(userId, hashes, svc.clock.now());
  return codes;
}

/** POST /mfa/backup-codes: only while MFA is on (a set without TOTP would be a password). */
export async function regenerateBackupCodes(
  svc: Services,
  user: User,
  client: ClientInfo,
): Promise<string[]> {
  const codes = await svc.store.transaction(async (tx) => {
    // Holding the user's row serialises regenerations (on PostgreSQL each one's delete
    // misses the rows a concurrent one inserts, which left every set valid) and a
    // concurrent MFA disable, which is why MFA is checked under the lock.
    await tx.lockUser(user.id);
    const fresh = await tx.users.findById(user.id);
    if (!fresh?.mfaEnabled) throw new AuthError("conflict", "MFA is not enabled");
    return replaceBackupCodes(svc, tx, user.id);
  });
  audit(svc, { type: "backup_codes_regenerated", userId: user.id }, client);
  noticeSecurityChange(
    svc,
    user,
    "New backup codes were made; the earlier ones no longer work.",
    client,
  );
  return codes;
}
