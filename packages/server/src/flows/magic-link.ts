import { assertAccountUsable } from "../domain/account-policy.js";
import type { ClientInfo, Services } from "../services.js";
import { completeFirstFactor } from "./first-factor.js";
import type { LoginResult } from "./login.js";
import { consumeLink, mailLinkOnRequest } from "./mail-links.js";

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
 * the address becomes verified; MFA users still owe their second factor.
 */
export async function verifyMagicLink(
  svc: Services,
  token: string,
  client: ClientInfo,
): Promise<LoginResult> {
  const now = svc.clock.now();
  const found = await svc.store.transaction(async (tx) => {
    const user = await consumeLink(svc, tx, token, "magic_link");
    if (!user.emailVerified) await tx.users.markEmailVerified(user.id, user.email as string, now);
    return user;
  });
  if (!found.emailVerified) svc.sessions.userChanged(found.id);
  const user = { ...found, emailVerified: true };
  assertAccountUsable(user, client.ip);
  return completeFirstFactor(svc, user, client, {
    amr: MAGIC_LINK_AMR,
    rememberMe: false,
    detail: { method: "magic_link" },
  });
}
