import { AuthError } from "../domain/errors.js";
import { newTotpSecret, totpIssuer, totpQrDataUrl, totpUri } from "../domain/totp.js";
import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { replaceBackupCodes } from "./backup-codes.js";
import { noticeSecurityChange } from "./notices.js";
import { acceptTotp } from "./second-factor.js";

export interface TotpSetup {
  secret: string;
  otpauthUrl: string;
  qrCodeDataUrl: string;
}

const ALREADY_ON = "MFA is already enabled; disable it first";

/**
 * Step 1: a new secret, stored sealed and pending (mfa_enabled stays 0) until a
 * code proves the authenticator has it. Calling again replaces a pending secret.
 */
export async function startTotpSetup(svc: Services, user: User): Promise<TotpSetup> {
  // A guest comes back by email alone, around any second factor: upgrade first.
  if (user.guest)
    throw new AuthError("forbidden", "Guests cannot enable MFA; upgrade the account first");
  const secret = newTotpSecret();
  const sealed = svc.box.seal(secret);
  if (!(await svc.store.users.setPendingTotpSecret(user.id, sealed, svc.clock.now()))) {
    throw new AuthError("conflict", ALREADY_ON);
  }
  const issuer = totpIssuer(svc.config.publicUrl, svc.config.mail.productName);
  const otpauthUrl = totpUri(secret, issuer, user.email ?? user.username ?? user.id);
  return { secret, otpauthUrl, qrCodeDataUrl: await totpQrDataUrl(otpauthUrl) };
}

/** Step 2: the first code turns MFA on and yields the backup codes, in one transaction. */
export async function enableTotp(
  svc: Services,
  user: User,
  code: string,
  client: ClientInfo,
): Promise<string[]> {
  const fresh = await svc.store.users.findById(user.id);
  if (fresh?.mfaEnabled) throw new AuthError("conflict", ALREADY_ON);
  const sealed = await svc.store.users.totpSecret(user.id);
  if (!sealed) throw new AuthError("conflict", "No TOTP setup is pending; call /mfa/totp/setup");
  if (!(await acceptTotp(svc, user.id, sealed, code))) {
    throw new AuthError("invalid_code", "The code is not valid");
  }
  const codes = await svc.store.transaction(async (tx) => {
    // Against the secret just checked: a setup replaced meanwhile is not enabled.
    if (!(await tx.users.enableMfa(user.id, sealed, svc.clock.now()))) {
      throw new AuthError("conflict", "The TOTP setup changed meanwhile; start again");
    }
    return replaceBackupCodes(svc, tx, user.id);
  });
  svc.sessions.userChanged(user.id);
  audit(svc, { type: "mfa_enabled", userId: user.id }, client);
  noticeSecurityChange(svc, user, "Two-factor authentication was turned on.", client);
  return codes;
}
