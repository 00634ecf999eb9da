import { AuthError } from "../domain/errors.js";
import { assertPasswordAcceptable } from "../domain/password-policy.js";
import { normalizeEmail, type User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { isUniqueViolation } from "../store/db.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { sendVerification } from "./email-verification.js";
import { accessTokenFor } from "./issue-tokens.js";
import { holdLiveSession } from "./live-session.js";

export interface GuestUpgradeInput {
  email: string;
  password: string;
  /** Defaults to the guest's display name, which must then be free as a real username. */
  username?: string;
}

/**
 * POST /auth/guest/upgrade: the guest becomes a full account with the same id, so
 * whatever the product keyed on it stays. One transaction: the account, and every other
 * session of the guest revoked. This session goes on (to its fixed end) with an access
 * token that no longer says `guest`.
 */
export async function upgradeGuest(
  svc: Services,
  auth: Authenticated,
  input: GuestUpgradeInput,
  client: ClientInfo,
): Promise<{ user: User; accessToken: string; expiresIn: number }> {
  if (!auth.user.guest) throw new AuthError("conflict", "This account is not a guest");
  const username = input.username ?? auth.user.username;
  await assertPasswordAcceptable(
    input.password,
    { username, email: input.email },
    svc.config.password,
  );
  const passwordHash = await svc.hasher.hash(input.password);
  let user: User | undefined;
  try {
    user = await svc.store.transaction(async (tx) => {
      await holdLiveSession(svc, tx, auth.user.id, auth.session.id);
      const upgraded = await tx.users.upgradeGuest(
        auth.user.id,
        { email: normalizeEmail(input.email), passwordHash, username },
        svc.clock.now(),
      );
      // The guest's email let anyone open a session as it (returning guest): none of those
      // may go on into the account the password now protects. Moving the epoch also ends
      // a returning-guest sign-in still in flight.
      if (upgraded) {
        await svc.sessions.revokeAllForUser(upgraded.id, "guest_upgraded", auth.session.id, tx);
      }
      return upgraded;
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    throw new AuthError("conflict", "An account with this email or username already exists");
  }
  if (!user) throw new AuthError("conflict", "This account is not a guest");
  // Contexts re-cached while the transaction ran must not outlive it.
  svc.sessions.userChanged(user.id);
  audit(svc, { type: "guest_upgraded", userId: user.id, sessionId: auth.session.id }, client);
  sendVerification(svc, user, client);
  return { user, ...(await accessTokenFor(svc, user, auth.session)) };
}
