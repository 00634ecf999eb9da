import { AuthError } from "../domain/errors.js";
import { assertNotOwnName, assertPasswordAcceptable } from "../domain/password-policy.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { consumeLink, mailLinkOnRequest } from "./mail-links.js";
import { noticePasswordChanged } from "./notices.js";
import { claimUnprovenAccount } from "./unproven-account.js";

/**
 * POST /auth/password/forgot. The answer is the same for every address and is
 * given before the account is even looked up (ASVS V2.5): the lookup, the token
 * and the mail all happen after the response.
 */
export const forgotPassword = (svc: Services, email: string, client: ClientInfo) =>
  mailLinkOnRequest(svc, email, client, "reset_password", { audit: "password_reset_requested" });

export interface ResetInput {
  token: string;
  newPassword: string;
}

/**
 * POST /auth/password/reset. One transaction uses the token, sets the password,
 * voids every other mailed link and ends every session: whoever else held the
 * account is out. The mailbox was proven, so the address counts as verified; when it
 * had not been, the ways in set up before go too (claimUnprovenAccount; MFA stays).
 */
export async function resetPassword(
  svc: Services,
  input: ResetInput,
  client: ClientInfo,
): Promise<void> {
  // A refused password must not burn the link: check and hash before using it.
  // The owner is known only once the link is used: their names are checked in the transaction.
  await assertPasswordAcceptable(input.newPassword, {}, svc.config.password, "newPassword");
  const passwordHash = await svc.hasher.hash(input.newPassword);
  const now = svc.clock.now();
  const user = await svc.store.transaction(async (tx) => {
    const user = await consumeLink(svc, tx, input.token, "reset_password");
    // A link mailed before the account was disabled must not change it now.
    if (user.disabled) throw new AuthError("account_disabled", "This account is disabled");
    assertNotOwnName(input.newPassword, user, "newPassword"); // a refusal rolls the use back
    // The mailbox claims an account nobody had proven it owns: the ways in set up before go.
    const claimed =
      !user.emailVerified && (await claimUnprovenAccount(svc, tx, user.id, { keepMfa: true }));
    await tx.users.setPasswordHash(user.id, passwordHash, now);
    await tx.users.markEmailVerified(user.id, user.email as string, now);
    await tx.oneTimeTokens.voidForUser(user.id, ["reset_password", "magic_link"], now);
    await svc.sessions.revokeAllForUser(user.id, "password_reset", undefined, tx);
    // Recovery: an API token made by whoever held the password must not outlive it.
    const apiTokensDeleted = await tx.apiTokens.deleteForUser(user.id);
    return { ...user, claimed, apiTokensDeleted };
  });
  svc.sessions.userChanged(user.id); // also evicts the user's cached API tokens, on every node
  const detail = {
    ...(user.claimed ? { credentialsReset: true } : {}),
    ...(user.apiTokensDeleted > 0 ? { apiTokensDeleted: user.apiTokensDeleted } : {}),
  };
  audit(svc, { type: "password_reset", userId: user.id, detail }, client);
  noticePasswordChanged(svc, user, client);
}
