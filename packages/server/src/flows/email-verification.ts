import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { consumeLink, linkMail, mailLater, mailLinkOnRequest } from "./mail-links.js";

/** Mails a verification link to the user's address, after the response. */
export function sendVerification(
  svc: Services,
  user: Pick<User, "id" | "email">,
  client: ClientInfo,
): void {
  const { email } = user;
  if (!email) return;
  mailLater(svc, { to: email, kind: "verify_email", client }, () =>
    linkMail(svc, { id: user.id, email }, "verify_email"),
  );
}

/** POST /auth/email/verify: the link's token marks the address verified, once. */
export async function verifyEmail(svc: Services, token: string, client: ClientInfo): Promise<User> {
  const now = svc.clock.now();
  const user = await svc.store.transaction(async (tx) => {
    const user = await consumeLink(svc, tx, token, "verify_email");
    await tx.users.markEmailVerified(user.id, user.email as string, now);
    return user;
  });
  svc.sessions.userChanged(user.id);
  audit(svc, { type: "email_verified", userId: user.id }, client);
  return { ...user, emailVerified: true };
}

/** POST /auth/email/resend: always the same answer; mail only for an unverified account. */
export const resendVerification = (svc: Services, email: string, client: ClientInfo) =>
  mailLinkOnRequest(svc, email, client, "verify_email", { wants: (user) => !user.emailVerified });
