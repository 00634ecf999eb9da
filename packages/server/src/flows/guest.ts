import { assertAccountUsable } from "../domain/account-policy.js";
import { uuidv7 } from "../domain/ids.js";
import { normalizeEmail, type User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { isUniqueViolation } from "../store/db.js";
import { audit } from "./audit.js";
import { createSession, type IssuedTokens, issueForSession, startSession } from "./issue-tokens.js";

/** rememberMe is moot: a guest session's length is fixed (sessionLifetimeMs). */
const GUEST_SESSION = { amr: ["guest"], rememberMe: false };

export interface GuestInput {
  username: string;
  email?: string;
}

export type GuestTokens = IssuedTokens & { returningGuest: boolean };

/**
 * POST /auth/guest: a new guest with a 50-hour session, or, when the email names an
 * earlier guest, a new session for that guest. The email is a way back in, not a
 * verified address: it is stored apart from real accounts' emails.
 */
export async function startGuest(
  svc: Services,
  input: GuestInput,
  client: ClientInfo,
): Promise<GuestTokens> {
  const guestEmail = input.email === undefined ? null : normalizeEmail(input.email);
  const earlier = guestEmail ? await svc.store.users.findGuestByEmail(guestEmail) : undefined;
  if (earlier) return returningGuest(svc, earlier, client);
  try {
    return {
      ...(await createGuest(svc, input.username, guestEmail, client)),
      returningGuest: false,
    };
  } catch (err) {
    // Two first visits with one email at once: the one that lost comes back as the other's guest.
    const winner =
      guestEmail && isUniqueViolation(err)
        ? await svc.store.users.findGuestByEmail(guestEmail)
        : undefined;
    if (!winner) throw err;
    return returningGuest(svc, winner, client);
  }
}

async function createGuest(
  svc: Services,
  username: string,
  guestEmail: string | null,
  client: ClientInfo,
): Promise<IssuedTokens> {
  const now = svc.clock.now();
  const { user, session, refreshToken } = await svc.store.transaction(async (tx) => {
    const user = await tx.users.createGuest({ id: uuidv7(now), username, guestEmail }, now);
    return { user, ...(await createSession(svc, tx, user, client, GUEST_SESSION)) };
  });
  audit(svc, { type: "guest_created", userId: user.id, sessionId: session.id }, client);
  return issueForSession(svc, user, session, refreshToken);
}

async function returningGuest(svc: Services, user: User, client: ClientInfo): Promise<GuestTokens> {
  assertAccountUsable(user, client.ip);
  const tokens = await startSession(svc, user, client, GUEST_SESSION);
  audit(
    svc,
    {
      type: "login_succeeded",
      userId: user.id,
      sessionId: tokens.sessionId,
      detail: { guest: true },
    },
    client,
  );
  return { ...tokens, returningGuest: true };
}
