import type { Session } from "../domain/session.js";
import type { User } from "../domain/user.js";
import { describeDevice } from "../domain/user-agent.js";
import {
  type FirstFactorKind,
  type NoticeContext,
  type Rendered,
  templates,
} from "../mail/templates.js";
import type { ClientInfo, Services } from "../services.js";
import { mailLater, type NoticeKind } from "./mail-links.js";

/**
 * Security notices: mail that tells the owner something changed, so a takeover
 * does not go unseen. All are sent after the response and none can fail a request.
 * Each kind has its own per-address budget, so no one can flood an inbox with them,
 * and a flood of one kind (new sign-ins, say) cannot use up another's (the password
 * change that follows). They skip the per-IP budget: the actions behind them need the
 * account, and whoever holds it could otherwise spend their own IP's budget first and
 * then change the password unseen.
 */
function context(svc: Services, client: ClientInfo): NoticeContext {
  const device = describeDevice(client.userAgent);
  return {
    at: new Date(svc.clock.now()),
    ip: client.ip,
    device: [device.browser, device.os].filter(Boolean).join(" on ") || null,
  };
}

function notify(svc: Services, kind: NoticeKind, to: string | null, render: () => Rendered): void {
  if (to) mailLater(svc, { to, kind }, async () => render());
}

export function noticePasswordChanged(svc: Services, user: User, client: ClientInfo): void {
  notify(svc, "notice:password", user.email, () =>
    templates.passwordChanged(svc.config.mail, context(svc, client)),
  );
}

/** MFA turned on or off, new backup codes, a passkey added: `change` says which, in one sentence. */
export function noticeSecurityChange(
  svc: Services,
  user: User,
  change: string,
  client: ClientInfo,
): void {
  notify(svc, "notice:security", user.email, () =>
    templates.securityChange(svc.config.mail, change, context(svc, client)),
  );
}

/** To the old address: the one a hijacker just replaced. */
export function noticeEmailChanged(
  svc: Services,
  oldEmail: string,
  newEmail: string,
  client: ClientInfo,
): void {
  notify(svc, "notice:email", oldEmail, () =>
    templates.emailChanged(svc.config.mail, newEmail, context(svc, client)),
  );
}

/**
 * A sign-in from a browser and OS this account has no other session record of.
 * Versions are ignored (a browser update is not a new device), and the very
 * first session of an account is not news.
 */
export function noticeNewSignIn(
  svc: Services,
  user: User,
  session: Session,
  client: ClientInfo,
): void {
  if (!user.email || !svc.config.mail.newSignInNotice) return;
  const family = (label: string | null) => label?.replace(/ \d+$/, "") ?? null;
  // Decided first, so sign-ins from known devices never use up the notice budget.
  svc.mailer.defer(async () => {
    const others = await svc.store.sessions.devicesOf(user.id, session.id);
    if (others.length === 0) return;
    const device = describeDevice(client.userAgent);
    const known = others.some(
      (o) => family(o.browser) === family(device.browser) && family(o.os) === family(device.os),
    );
    if (!known) {
      notify(svc, "notice:sign-in", user.email, () =>
        templates.newSignIn(svc.config.mail, context(svc, client)),
      );
    }
  });
}

/** An MFA token's sign-in: what its first factor proved, and until when the token works. */
export interface PendingSignIn {
  jti: string;
  amr: string[];
  ttlMs: number;
}

/**
 * A wrong second factor after a right first one: the owner learns that their password (or
 * mailbox, provider account, passkey) is in someone's hands before the second factor is too.
 * Once per MFA token, whatever the number of wrong codes: the token is what one proven
 * first factor bought, and it is claimed before the budget so retries never spend that.
 *
 * Sent from addresses the account signed in from before as well. accountLimitKey trusts
 * them for availability, where taking a stranger for the owner costs one address's share
 * of guesses; here the same mistake hides the very news the notice exists for, and from the
 * strangers likeliest to hold the password: a housemate or colleague behind the same NAT,
 * users of a carrier's shared address, or a hijacker whose sessions the owner ended, since
 * ended sessions stay on record (existsFrom) and keep their address "known". An owner's
 * typo costs them one mail that says what they just did, within the per-kind budget.
 */
export function noticeSecondStepFailed(
  svc: Services,
  user: User,
  pending: PendingSignIn,
  client: ClientInfo,
): void {
  if (!user.email) return;
  const first = firstFactorKind(pending.amr);
  svc.mailer.defer(async () => {
    const once = `mfa-failed-notice:${pending.jti}`;
    if (!(await svc.replay.claim(once, pending.ttlMs, svc.clock.now()))) return;
    notify(svc, "notice:mfa-failed", user.email, () =>
      templates.secondStepFailed(svc.config.mail, first, context(svc, client)),
    );
  });
}

/** RFC 8176 values the first factors record (login, magic link, provider, passkey without UV). */
function firstFactorKind(amr: string[]): FirstFactorKind {
  if (amr.includes("hwk")) return "passkey";
  if (amr.includes("email")) return "link";
  if (amr.includes("fed")) return "provider";
  return "password";
}
