import { normalizeBackupCode } from "../domain/backup-codes.js";
import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import { TOTP_REPLAY_TTL_MS, totpStep } from "../domain/totp.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { accountLimitKey } from "./login-limits.js";

export type SecondFactor = "totp" | "backup_code";

/**
 * A TOTP code for the (sealed) secret, accepted once: RFC 6238 §5.2 forbids
 * accepting a code again after it was verified, so its step is claimed per user and
 * secret in the replay guard (shared across nodes with Redis). The secret is part of
 * the key because a code of a new secret is no replay of the old one's: MFA turned
 * off and on again within a step must accept the new authenticator's code.
 */
export async function acceptTotp(
  svc: Services,
  userId: string,
  sealedSecret: string | null,
  code: string,
): Promise<boolean> {
  if (!sealedSecret) return false;
  const now = svc.clock.now();
  const secret = svc.box.open(sealedSecret);
  const step = totpStep(secret, code.replace(/\s/g, ""), now);
  if (step === undefined) return false;
  // A digest, never the secret itself, in the (possibly shared) replay store.
  const key = `totp:${userId}:${sha256(secret).slice(0, 16)}:${step}`;
  return svc.replay.claim(key, TOTP_REPLAY_TTL_MS, now);
}

/** A backup code of the user's current set, used up by this call (compare-and-set). */
export async function acceptBackupCode(
  svc: Services,
  userId: string,
  input: string,
): Promise<boolean> {
  const code = normalizeBackupCode(input);
  if (!code) return false;
  const hash = svc.backupCodes.hash(userId, code);
  return svc.store.backupCodes.consume(userId, hash, svc.clock.now());
}

/** Either form: six digits are a TOTP code, anything else is tried as a backup code. */
export async function acceptSecondFactor(
  svc: Services,
  userId: string,
  code: string,
): Promise<SecondFactor | undefined> {
  if (/^\d{6}$/.test(code.replace(/\s/g, ""))) {
    const secret = await svc.store.users.totpSecret(userId);
    return (await acceptTotp(svc, userId, secret, code)) ? "totp" : undefined;
  }
  return (await acceptBackupCode(svc, userId, code)) ? "backup_code" : undefined;
}

/**
 * Where second-factor attempts count. Finishing a sign-in counts per account with the
 * owner's addresses apart (accountLimitKey, as for passwords): whoever has the password
 * can fill the account's count from anywhere, and that must not keep the owner out.
 * Proving presence again inside a session (step-up, unlock, password change) counts per
 * user in a count of its own: wrong codes at sign-in, which the password alone allows,
 * neither block it nor are cleared by its successes.
 */
export type AttemptBucket =
  | { kind: "sign-in"; userId: string; ip: string }
  | { kind: "in-session"; userId: string };

const bucketKey = async (svc: Services, bucket: AttemptBucket): Promise<string> =>
  bucket.kind === "sign-in"
    ? `sign-in:${await accountLimitKey(svc, bucket.userId, bucket.ip)}`
    : `in-session:${bucket.userId}`;

/**
 * Counts an attempt before the check, like password login, so parallel guesses
 * cannot all slip under the limit; a success clears the count (see `passed`).
 */
export async function limitSecondFactor(
  svc: Services,
  bucket: AttemptBucket,
  client: ClientInfo,
): Promise<{ passed(): Promise<void> }> {
  const limiter = svc.limits.secondFactor;
  const { userId } = bucket;
  const key = await bucketKey(svc, bucket);
  const wait = await limiter.hit(key);
  if (wait > 0) {
    await limiter.refund(key);
    audit(svc, { type: "mfa_rate_limited", userId }, client);
    throw new AuthError("rate_limited", "Too many failed attempts; try again later", {
      retryAfterSeconds: wait,
    });
  }
  return { passed: () => limiter.reset(key) };
}
