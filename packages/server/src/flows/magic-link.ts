import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import type { ClientInfo, Services } from "../services.js";
import { completeFirstFactor } from "./first-factor.js";
import type { LoginResult } from "./login.js";
import { consumeLink, mailLinkOnRequest } from "./mail-links.js";
import { claimUnprovenAccount } from "./unproven-account.js";

/**
 * RFC 8176 has no value for "proved control of the mailbox"; `email` names it
 * plainly and is not mistaken for a second factor by any check.
 */
export const MAGIC_LINK_AMR = ["email"];

/** POST /auth/magic-link: always the same answer; a link only for an existing, enabled account. */
export const requestMagicLink = (svc: Services, email: string, client: ClientInfo) =>
  mailLinkOnRequest(svc, email, client, "magic_link", { audit: "magic_link_requested" });

/**
 * POST /auth/magic-link/verify: the link works once. It proves the mailbox, so the
 * address becomes verified, and an account whose address never was loses what was set
 * up before (claimUnprovenAccount, MFA aside); MFA users still owe their second factor.
 */
export async function verifyMagicLink(
  svc: Services,
  token: string,
  client: ClientInfo,
): Promise<LoginResult> {
  const now = svc.clock.now();
  const { user, claimed } = await svc.store.transaction(async (tx) => {
    const found = await consumeLink(svc, tx, token, "magic_link");
    // Refused before anything changes: the link stays unused and the account as it was.
    assertAccountUsable(found, client.ip);
    if (found.emailVerified) return { user: found, claimed: false };
    if (await claimUnprovenAccount(svc, tx, found.id, { keepMfa: true })) {
      const claimedUser = await tx.users.findById(found.id);
      if (!claimedUser) throw new AuthError("user_not_found", "The account no longer exists");
      return { user: claimedUser, claimed: true };
    }
    await tx.users.markEmailVerified(found.id, found.email as string, now);
    return { user: found, claimed: false };
  });
  if (claimed || !user.emailVerified) svc.sessions.userChanged(user.id);
  return completeFirstFactor(svc, { ...user, emailVerified: true }, client, {
    amr: MAGIC_LINK_AMR,
    rememberMe: false,
    detail: { method: "magic_link", ...(claimed ? { credentialsReset: true } : {}) },
  });
}
