import { type AccessSubject, signAccessToken } from "../domain/access-token.js";
import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import { monotonicUuidv7 } from "../domain/ids.js";
import { accessTokenIssuedAt, type Session, sessionLifetimeMs } from "../domain/session.js";
import type { User } from "../domain/user.js";
import { describeDevice } from "../domain/user-agent.js";
import type { ClientInfo, Services } from "../services.js";
import type { Store } from "../store/index.js";
import { noticeNewSignIn } from "./notices.js";

export interface IssuedTokens {
  user: User;
  sessionId: string;
  accessToken: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  /** Seconds until the session's absolute end. */
  sessionExpiresIn: number;
}

export interface SessionStart {
  amr: string[];
  rememberMe: boolean;
  /** The user's session epoch when the sign-in began, if before `user` was read (MFA). */
  epoch?: number;
}

/** A new session (one login) and its first token pair. */
export async function startSession(
  svc: Services,
  user: User,
  client: ClientInfo,
  start: SessionStart,
): Promise<IssuedTokens> {
  const { session, refreshToken } = await createSession(svc, svc.store, user, client, start);
  // Read again now that the session exists. A password reset, password change or "log
  // out everywhere" that finished after this sign-in read the account moved the epoch,
  // and its revocation may have come before this session existed: the session ends here
  // instead. And singleSession as it is now, not as the sign-in first read it.
  const current = await svc.store.users.sessionPolicy(user.id);
  if (current?.sessionEpoch !== (start.epoch ?? user.sessionEpoch)) {
    await svc.sessions.revoke(session.id, "sign_in_raced");
    throw new AuthError(
      "session_revoked",
      "The account's sessions were ended while signing in; sign in again",
    );
  }
  // singleSession: signing in here signs out everywhere else.
  if (current.singleSession) await svc.sessions.revokeOlderForUser(user.id, session.id);
  noticeNewSignIn(svc, user, session, client);
  return issueForSession(svc, user, session, refreshToken);
}

/** In creation order, even within a millisecond: singleSession keeps the newest. */
const sessionId = monotonicUuidv7();

/** The session row and its first refresh token; `tx` lets a caller make it part of a transaction. */
export async function createSession(
  svc: Services,
  tx: Store,
  user: User,
  client: ClientInfo,
  start: SessionStart,
): Promise<{ session: Session; refreshToken: string }> {
  const now = svc.clock.now();
  const id = sessionId(now);
  const refreshToken = svc.refreshTokens.issue(id, 0);
  const session = await tx.sessions.create(
    {
      id,
      userId: user.id,
      refreshHash: sha256(refreshToken),
      absoluteExpiresAt: now + sessionLifetimeMs(svc.config.tokens, user, start.rememberMe),
      ip: client.ip,
      userAgent: client.userAgent,
      ...describeDevice(client.userAgent),
      amr: start.amr,
      rememberMe: start.rememberMe,
    },
    now,
  );
  return { session, refreshToken };
}

/** An access token for an existing session, paired with the given refresh token. */
export async function issueForSession(
  svc: Services,
  user: User,
  session: Session,
  refreshToken: string,
): Promise<IssuedTokens> {
  const access = await accessTokenFor(svc, user, session);
  return { user, sessionId: session.id, refreshToken, ...access };
}

/** A fresh access token for a session, never outliving it. */
export async function accessTokenFor(
  svc: Services,
  user: User,
  session: Session,
): Promise<Pick<IssuedTokens, "accessToken" | "expiresIn" | "sessionExpiresIn">> {
  const now = svc.clock.now();
  // Right after a renewal (password change, unlock) this is the session's cut-off, up
  // to a second ahead, so the token is not refused as one from before it.
  const issuedAt = accessTokenIssuedAt(session, now);
  const sessionExpiresIn = Math.max(0, Math.round((session.absoluteExpiresAt - now) / 1000));
  const expiresIn = Math.min(
    svc.config.tokens.accessTtlSeconds,
    Math.max(0, Math.round((session.absoluteExpiresAt - issuedAt) / 1000)),
  );
  const accessToken = await signAccessToken(
    accessSubject(user, session),
    svc.keys.keyring,
    { ...tokenSettings(svc), ttlSeconds: expiresIn },
    issuedAt,
  );
  return { accessToken, expiresIn, sessionExpiresIn };
}

export const accessSubject = (user: User, session: Session): AccessSubject => ({
  sub: user.id,
  sid: session.id,
  role: user.role,
  tier: user.tier,
  subscriptionStatus: user.subscriptionStatus,
  username: user.username,
  emailVerified: user.emailVerified,
  guest: user.guest,
  amr: session.amr,
});

export const tokenSettings = (svc: Services) => ({
  issuer: svc.config.issuer,
  audience: svc.config.audience,
  ttlSeconds: svc.config.tokens.accessTtlSeconds,
  clockToleranceSeconds: svc.config.tokens.clockToleranceSeconds,
});
