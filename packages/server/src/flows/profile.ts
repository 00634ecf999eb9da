import { AuthError } from "../domain/errors.js";
import { normalizeAllowedIps } from "../domain/ip-rules.js";
import { assertMayScreenLock } from "../domain/screen-lock.js";
import { maxSessionDurationMinutes } from "../domain/session.js";
import { normalizeEmail } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { isUniqueViolation } from "../store/db.js";
import { ONE_TIME_PURPOSES } from "../store/schema.js";
import type { ProfileChange } from "../store/users.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { sendVerification } from "./email-verification.js";
import { accessTokenFor } from "./issue-tokens.js";
import { holdLiveSession } from "./live-session.js";
import { noticeEmailChanged } from "./notices.js";

/**
 * PATCH /users/me. The new profile takes effect at once on every node (the
 * session caches are told), and the caller gets an access token carrying it.
 */
export async function updateProfile(
  svc: Services,
  auth: Authenticated,
  change: ProfileChange,
  client: ClientInfo,
): Promise<{ user: Authenticated["user"]; accessToken: string; expiresIn: number }> {
  // A guest's name is for display only and its email is not an account's: claiming
  // either would block real accounts, so that happens only through the upgrade.
  if (auth.user.guest && (change.username !== undefined || change.email !== undefined)) {
    throw new AuthError(
      "forbidden",
      "Guests set a username or email with POST /auth/guest/upgrade",
    );
  }
  // A guest comes back by email alone, which would walk around an IP rule.
  if (auth.user.guest && change.allowedIps !== undefined) {
    throw new AuthError("forbidden", "Guests cannot restrict IPs; upgrade the account first");
  }
  // Turning the idle lock off (null) is always allowed.
  if (change.screenLockMinutes != null) assertMayScreenLock(auth.user);
  assertSessionDurationAllowed(svc, change.sessionDurationMinutes);
  const normalized: ProfileChange = {
    ...change,
    ...(change.email !== undefined ? { email: normalizeEmail(change.email) } : {}),
    ...(change.allowedIps !== undefined
      ? { allowedIps: normalizeAllowedIps(change.allowedIps) }
      : {}),
  };
  if (normalized.email !== undefined && normalized.email === auth.user.email)
    delete normalized.email;
  let user: Authenticated["user"];
  try {
    const now = svc.clock.now();
    user = await svc.store.transaction(async (tx) => {
      // The session must still be live: a change it asked for must not land on an account
      // a claim or reset took from it meanwhile (a squatter's email address, say).
      await holdLiveSession(svc, tx, auth.user.id, auth.session.id);
      const updated = await tx.users.update(auth.user.id, normalized, now);
      if (!updated) throw new AuthError("user_not_found", "The account no longer exists");
      // Links mailed to the old address must not come back to life if it returns.
      if (normalized.email !== undefined) {
        await tx.oneTimeTokens.voidForUser(auth.user.id, ONE_TIME_PURPOSES, now);
      }
      return updated;
    });
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new AuthError("conflict", "That email or username is already taken");
    }
    throw err;
  }
  svc.sessions.userChanged(user.id);
  if (normalized.email !== undefined) {
    const oldEmail = auth.user.email;
    audit(svc, { type: "email_changed", userId: user.id, sessionId: auth.session.id }, client);
    if (oldEmail && normalized.email) noticeEmailChanged(svc, oldEmail, normalized.email, client);
    sendVerification(svc, user, client);
  }
  return { user, ...(await accessTokenFor(svc, user, auth.session)) };
}

/**
 * Sessions no longer than the operator allows (tokens.maxSessionDurationSeconds): the
 * route's schema bound (a year) is the API's, this one is the deployment's. Shorter is fine.
 */
function assertSessionDurationAllowed(svc: Services, minutes: number | null | undefined): void {
  const max = maxSessionDurationMinutes(svc.config.tokens);
  if (minutes === undefined || minutes === null || minutes <= max) return;
  const message = `must be at most ${max} (minutes: the longest session this server allows)`;
  throw new AuthError("validation_failed", `sessionDurationMinutes ${message}`, {
    errors: [{ path: "sessionDurationMinutes", message }],
  });
}
