import { assertMayAddLastingAccess } from "../../domain/account-policy.js";
import { AuthError } from "../../domain/errors.js";
import { PURPOSE_TTL_S } from "../../domain/purpose-token.js";
import type { ClientInfo, Services } from "../../services.js";
import { isUniqueViolation } from "../../store/db.js";
import type { Store } from "../../store/index.js";
import { audit } from "../audit.js";
import type { Authenticated } from "../authenticate.js";
import { holdLiveSession } from "../live-session.js";
import { msUntilUnusable, signPurpose, verifyPurpose } from "../purpose-tokens.js";
import type { FederatedProfile } from "./profile.js";
import type { OAuthProvider } from "./providers.js";

/** A link token opens one /start?link=… within this time (API.md: 5 min). */
export const LINK_TOKEN_TTL_S = PURPOSE_TTL_S.oauth_link;

export interface LinkGrant {
  linkToken: string;
  expiresIn: number;
}

/** POST /auth/oauth/link-token (after step-up): names this user and session, works once. */
export function issueLinkToken(svc: Services, auth: Authenticated): LinkGrant {
  assertMayAddLastingAccess(auth.user, "link a provider");
  const linkToken = signPurpose(
    svc,
    "oauth_link",
    { sub: auth.user.id, sid: auth.session.id, amr: auth.session.amr },
    LINK_TOKEN_TTL_S,
  );
  return { linkToken, expiresIn: LINK_TOKEN_TTL_S };
}

const INVALID_LINK = "The link token is not valid, was already used or has expired";

/** What a link token names: the user, and the session it came from (live at /start). */
export interface LinkTarget {
  userId: string;
  sessionId: string;
}

/** The user a link token names, while the session it came from is live; it is used up here. */
export async function linkTarget(svc: Services, token: string): Promise<LinkTarget> {
  const result = await verifyPurpose(svc, "oauth_link", token);
  if (!result.ok || !result.claims.sid)
    throw new AuthError("invalid_or_expired_token", INVALID_LINK);
  const { claims } = result;
  const now = svc.clock.now();
  const context =
    svc.sessions.cached(claims.sid as string) ?? (await svc.sessions.load(claims.sid as string));
  const live =
    context?.user.id === claims.sub &&
    context.session.revokedAt === null &&
    context.session.absoluteExpiresAt > now;
  if (!live) throw new AuthError("invalid_or_expired_token", INVALID_LINK);
  if (!(await svc.replay.claim(`oauth-link:${claims.jti}`, msUntilUnusable(svc, claims), now))) {
    throw new AuthError("invalid_or_expired_token", INVALID_LINK);
  }
  return { userId: claims.sub, sessionId: claims.sid as string };
}

/**
 * The callback of a /start?link=… flow: the identity joins that user, unless it is someone
 * else's, and only while the session that asked for the link token is still live. The user
 * may spend up to START_TTL_S at the provider: a claim of the account (claimUnprovenAccount),
 * a password reset or "log out everywhere" in that time ends the session, and the identity
 * a squatter was linking must not join the account its owner has just taken back.
 */
export async function linkToUser(
  svc: Services,
  provider: OAuthProvider,
  target: LinkTarget,
  profile: FederatedProfile,
  client: ClientInfo,
): Promise<void> {
  const { userId, sessionId } = target;
  const providerId = provider.settings.id;
  const owner = await svc.store.identities.find(providerId, profile.subject);
  if (owner && owner.userId !== userId) {
    throw new AuthError("identity_in_use", "This identity is linked to another account");
  }
  if (owner) return; // linked already: nothing changes
  await connectIdentity(svc, provider, userId, profile, async (tx) => {
    try {
      await holdLiveSession(svc, tx, userId, sessionId);
    } catch (err) {
      // The session ended: to the caller, the link token it stood for did.
      if (err instanceof AuthError) throw new AuthError("invalid_or_expired_token", INVALID_LINK);
      throw err;
    }
  });
  audit(
    svc,
    { type: "identity_linked", userId, detail: { provider: providerId, via: "link" } },
    client,
  );
}

/**
 * Inserts the link, after `prepare` in the same transaction; the unique keys decide
 * races: one identity per user and provider.
 */
export async function connectIdentity(
  svc: Services,
  provider: OAuthProvider,
  userId: string,
  profile: FederatedProfile,
  prepare?: (tx: Store) => Promise<void>,
): Promise<void> {
  const providerId = provider.settings.id;
  const identity = {
    provider: providerId,
    subject: profile.subject,
    userId,
    email: profile.email,
    tokens: profile.sealedTokens,
  };
  try {
    await svc.store.transaction(async (tx) => {
      await prepare?.(tx);
      await tx.identities.link(identity, svc.clock.now());
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const owner = await svc.store.identities.find(providerId, profile.subject);
    if (owner?.userId === userId) return;
    if (owner) throw new AuthError("identity_in_use", "This identity is linked to another account");
    throw new AuthError(
      "conflict",
      `The account is linked to another ${provider.settings.name} account; unlink that first`,
    );
  }
  svc.sessions.userChanged(userId);
}

/** DELETE /users/me/identities/:provider (after step-up), never the last way to sign in. */
export async function unlinkIdentity(
  svc: Services,
  auth: Authenticated,
  providerId: string,
  client: ClientInfo,
): Promise<void> {
  const userId = auth.user.id;
  const now = svc.clock.now();
  const outcome = await svc.store.transaction((tx) =>
    tx.identities.unlinkUnlessLast(userId, providerId, now),
  );
  if (outcome === "not_found") {
    throw new AuthError("not_found", `No identity of ${providerId} is linked`);
  }
  if (outcome === "last") {
    throw new AuthError(
      "conflict",
      "This is the only way to sign in to the account; set a password (password reset) or link another provider first",
    );
  }
  svc.sessions.userChanged(userId);
  audit(
    svc,
    {
      type: "identity_unlinked",
      userId,
      sessionId: auth.session.id,
      detail: { provider: providerId },
    },
    client,
  );
}
