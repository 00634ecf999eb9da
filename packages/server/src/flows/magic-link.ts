import { assertAccountUsable } from "../domain/account-policy.js";
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
 * POST /auth/magic-link/verify: the link works once. It proves the mailbox, so
 * the address becomes verified, and an account whose address had not been loses what
 * was set up before (claimUnprovenAccount, MFA aside); MFA users still owe their second factor.
 */
export async function verifyMagicLink(
  svc: Services,
  token: string,
  client: ClientInfo,
): Promise<LoginResult> {
  const { user, claimed } = await svc.store.transaction(async (tx) => {
    const found = await consumeLink(svc, tx, token, "magic_link");
    // The mailbox claims an account nobody had proven it owns: the ways in set up before
    // goes (claimUnprovenAccount), and the account is read again without it.
    if (
      found.emailVerified ||
      !(await claimUnprovenAccount(svc, tx, found.id, { keepMfa: true }))
    ) {
      return { user: found, claimed: false };
    }
    return { user: (await tx.users.findById(found.id)) ?? found, claimed: true };
  });
  if (claimed) svc.sessions.userChanged(user.id);
  assertAccountUsable(user, client.ip);
  return completeFirstFactor(svc, { ...user, emailVerified: true }, client, {
    amr: MAGIC_LINK_AMR,
    rememberMe: false,
    detail: { method: "magic_link", ...(claimed ? { credentialsReset: true } : {}) },
  });
}
