import type { Config } from "../config/load.js";
import { randomToken, sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import type { User } from "../domain/user.js";
import { normalizeEmail } from "../domain/user.js";
import { type Rendered, templates } from "../mail/templates.js";
import type { ClientInfo, Services } from "../services.js";
import type { AuditType } from "../store/audit.js";
import type { Store } from "../store/index.js";
import type { OneTimePurpose } from "../store/schema.js";
import { audit } from "./audit.js";

/** The hosted page each link opens (see packages/ui); the token rides in the query. */
const PAGES: Record<OneTimePurpose, string> = {
  verify_email: "verify-email",
  reset_password: "reset-password",
  magic_link: "magic-link",
};

const TEMPLATES = {
  verify_email: templates.verifyEmail,
  reset_password: templates.resetPassword,
  magic_link: templates.magicLink,
} satisfies Record<OneTimePurpose, unknown>;

export function linkTtlSeconds(config: Config, purpose: OneTimePurpose): number {
  const { links } = config;
  return {
    verify_email: links.verifyEmailTtlSeconds,
    reset_password: links.resetPasswordTtlSeconds,
    magic_link: links.magicLinkTtlSeconds,
  }[purpose];
}

/**
 * A single-use link to the user's current address. Only its hash is stored, and
 * earlier unused links of the same purpose stop working (the newest mail wins).
 */
export async function createLink(
  svc: Services,
  user: Pick<User, "id" | "email">,
  purpose: OneTimePurpose,
): Promise<{ link: string; ttlSeconds: number }> {
  if (!user.email) throw new TypeError("createLink needs a user with an email");
  const token = randomToken();
  const now = svc.clock.now();
  const ttlSeconds = linkTtlSeconds(svc.config, purpose);
  const record = {
    userId: user.id,
    purpose,
    tokenHash: sha256(token),
    email: user.email,
    expiresAt: now + ttlSeconds * 1000,
  };
  await svc.store.transaction(async (tx) => {
    await tx.lockUser(user.id); // two concurrent requests must not leave two live links
    await tx.oneTimeTokens.voidForUser(user.id, [purpose], now);
    await tx.oneTimeTokens.create(record, now);
  });
  const { publicUrl, links } = svc.config;
  const link = `${publicUrl}${links.basePath}/${PAGES[purpose]}?token=${encodeURIComponent(token)}`;
  return { link, ttlSeconds };
}

/**
 * Uses a mailed token once (compare-and-set). It must name an account that still
 * has the address the link was sent to: changing the email voids older links.
 *
 * Locks in the one order every transaction on links keeps: the user's row, then their
 * token rows (createLink, a reset or password change voiding links, an email change).
 * Using the token first and locking its user after deadlocks on PostgreSQL against a
 * transaction that holds the user and voids that token. So the owner is read without
 * a lock, locked, and only then is the token used.
 */
export async function consumeLink(
  svc: Services,
  tx: Store,
  token: string,
  purpose: OneTimePurpose,
): Promise<User> {
  const hash = sha256(token);
  const now = svc.clock.now();
  const owner = await tx.oneTimeTokens.ownerOf(hash, purpose, now);
  // Held until commit, so an email change cannot slip in between this check and the write.
  if (owner) await tx.lockUser(owner);
  const used = owner ? await tx.oneTimeTokens.consume(hash, purpose, now) : undefined;
  // The row's owner never changes; checked all the same, since only that user is locked.
  const user = owner && used?.userId === owner ? await tx.users.findById(owner) : undefined;
  if (!used || !user || user.email !== used.email) {
    throw new AuthError("invalid_or_expired_token", "The link is invalid, expired or already used");
  }
  return user;
}

/** The security notices, each with a budget of its own (notices.ts). */
export type NoticeKind =
  | "notice:password"
  | "notice:email"
  | "notice:security"
  | "notice:sign-in"
  | "notice:mfa-failed";

/** What a queued mail is, for its budgets. */
export interface MailRequest {
  to: string;
  /**
   * Budgets are per address and kind, so a flood of one kind (say, reset requests
   * for a victim's address) does not also silence their verification mail.
   */
  kind: OneTimePurpose | NoticeKind | "account-exists";
  /** Also counts against the sender's per-IP mail budget; beyond it the mail is skipped. */
  client?: ClientInfo;
}

/**
 * Mail composed after the response, so the answer and its timing never depend on
 * whether the address has an account. `compose` returns undefined when there is
 * nothing to send. Beyond a budget the mail is dropped, silently: the request's
 * own effect stands, and the answer says nothing.
 */
export function mailLater(
  svc: Services,
  request: MailRequest,
  compose: () => Promise<Rendered | undefined>,
): void {
  svc.mailer.defer(async () => {
    const { to, kind, client } = request;
    const [byAddress, byIp] = await Promise.all([
      svc.limits.mailPerEmail.hit(`${kind}:${to}`),
      client ? svc.limits.mailPerIp.hit(client.ip) : 0,
    ]);
    if (byAddress > 0 || byIp > 0) {
      svc.log.warn(
        { kind, limit: byAddress > 0 ? "address" : "ip" },
        "mail limit reached; message dropped",
      );
      return;
    }
    const message = await compose();
    if (message) svc.mailer.send(to, message);
  });
}

/**
 * The per-IP budget, checked before anything else by the endpoints whose only
 * job is to send mail (resend, forgot, magic link): they answer 429.
 */
export async function limitMailRequest(svc: Services, client: ClientInfo): Promise<void> {
  const wait = await svc.limits.mailPerIp.hit(client.ip);
  if (wait > 0) {
    throw new AuthError("rate_limited", "Too many mail requests; try again later", {
      retryAfterSeconds: wait,
    });
  }
}

/** A fresh link of `purpose` for the user, rendered as its mail. */
export async function linkMail(
  svc: Services,
  user: Pick<User, "id" | "email">,
  purpose: OneTimePurpose,
): Promise<Rendered> {
  const { link, ttlSeconds } = await createLink(svc, user, purpose);
  return TEMPLATES[purpose](svc.config.mail, link, ttlSeconds);
}

/**
 * The public "mail me a link" requests (resend, forgot, magic link): 429 past the
 * per-IP budget; otherwise the same answer for every address, given before the
 * account is looked up. Only an enabled account that `wants` the link gets one.
 */
export async function mailLinkOnRequest(
  svc: Services,
  email: string,
  client: ClientInfo,
  purpose: OneTimePurpose,
  options: { wants?: (user: User) => boolean; audit?: AuditType } = {},
): Promise<void> {
  await limitMailRequest(svc, client);
  const address = normalizeEmail(email);
  mailLater(svc, { to: address, kind: purpose }, async () => {
    const user = await svc.store.users.findByEmail(address);
    if (!user || user.disabled || (options.wants && !options.wants(user))) return undefined;
    if (options.audit) audit(svc, { type: options.audit, userId: user.id }, client);
    return linkMail(svc, user, purpose);
  });
}
