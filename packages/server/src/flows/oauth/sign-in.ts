import { assertAccountUsable } from "../../domain/account-policy.js";
import { AuthError } from "../../domain/errors.js";
import { uuidv7 } from "../../domain/ids.js";
import { normalizeEmail, type User } from "../../domain/user.js";
import type { ClientInfo, Services } from "../../services.js";
import { isUniqueViolation } from "../../store/db.js";
import { audit } from "../audit.js";
import { sendVerification } from "../email-verification.js";
import { assertEmailVerifiedIfRequired, completeFirstFactor } from "../first-factor.js";
import type { LoginResult } from "../login.js";
import { claimUnprovenAccount } from "../unproven-account.js";
import { connectIdentity } from "./link.js";
import type { FederatedProfile } from "./profile.js";
import type { OAuthProvider } from "./providers.js";

/** RFC 8176 has no value for federation; "fed" is what Microsoft's and others' tokens carry. */
export const FEDERATED_AMR = ["fed"];

/**
 * The account a federated sign-in lands on: the one linked to this identity; else a
 * local account with the same email, only when the provider vouches for the email;
 * else a new account.
 */
export async function federatedUser(
  svc: Services,
  provider: OAuthProvider,
  profile: FederatedProfile,
  client: ClientInfo,
): Promise<User> {
  const providerId = provider.settings.id;
  const linked = await svc.store.identities.find(providerId, profile.subject);
  if (linked) {
    await svc.store.identities.refresh(providerId, profile.subject, {
      email: profile.email,
      tokens: profile.sealedTokens,
    });
    if (linked.email !== profile.email) svc.sessions.userChanged(linked.userId);
    const user = await existingUser(svc, linked.userId);
    // Still linked now that the account is read: a claim of the account that committed
    // since the lookup removed the identity, and `user` (with its session epoch) may be
    // the claimed account already, which this identity must not open. A claim after this
    // read moves the epoch, which the session start or exchange code checks.
    if ((await svc.store.identities.find(providerId, profile.subject))?.userId !== user.id) {
      throw new AuthError("session_revoked", "The account changed while signing in; sign in again");
    }
    return user;
  }
  const email = profile.email === null ? null : normalizeEmail(profile.email);
  const local = email === null ? undefined : await svc.store.users.findByEmail(email);
  if (!local) return createFederatedUser(svc, provider, profile, email, client);
  if (!profile.emailVerified) throw emailInUse();
  let reset = false;
  // One transaction: the credentials never end without the link that justified it.
  await connectIdentity(svc, provider, local.id, profile, async (tx) => {
    if (local.emailVerified) return;
    reset = await claimUnprovenAccount(svc, tx, local.id);
    // Not claimed, yet still unverified: the account proved an earlier address and then
    // moved to this one. It is its prover's; the provider's user links from inside it.
    if (!reset && !(await tx.users.findById(local.id))?.emailVerified) throw emailInUse();
  });
  if (reset) svc.sessions.userChanged(local.id);
  audit(
    svc,
    {
      type: "identity_linked",
      userId: local.id,
      detail: { provider: providerId, via: "verified_email", credentialsReset: reset },
    },
    client,
  );
  return existingUser(svc, local.id);
}

const emailInUse = () =>
  new AuthError(
    "email_in_use",
    "An account with this email exists; sign in to it and link the provider from there",
  );

async function createFederatedUser(
  svc: Services,
  provider: OAuthProvider,
  profile: FederatedProfile,
  email: string | null,
  client: ClientInfo,
): Promise<User> {
  const now = svc.clock.now();
  const providerId = provider.settings.id;
  try {
    const user = await svc.store.transaction(async (tx) => {
      const created = await tx.users.create(
        {
          id: uuidv7(now),
          email,
          emailVerified: profile.emailVerified,
          username: null,
          passwordHash: null,
          role: "user",
        },
        now,
      );
      const identity = { provider: providerId, subject: profile.subject, email: profile.email };
      await tx.identities.link(
        { ...identity, userId: created.id, tokens: profile.sealedTokens },
        now,
      );
      return { ...created, identities: [{ ...identity, linkedAt: now }] };
    });
    audit(svc, { type: "register", userId: user.id, detail: { provider: providerId } }, client);
    if (!user.emailVerified) sendVerification(svc, user, client);
    return user;
  } catch (err) {
    // Lost a race: the same identity signed up meanwhile, or the email was taken.
    if (!isUniqueViolation(err)) throw err;
    const linked = await svc.store.identities.find(providerId, profile.subject);
    if (linked) return existingUser(svc, linked.userId);
    throw new AuthError("email_in_use", "An account with this email exists");
  }
}

async function existingUser(svc: Services, userId: string): Promise<User> {
  const user = await svc.store.users.findById(userId);
  if (!user) throw new AuthError("user_not_found", "The account no longer exists");
  return user;
}

/** The checks of password login: usable account, and a verified email when that is required. */
export function assertMayFederate(svc: Services, user: User, ip: string): void {
  assertAccountUsable(user, ip);
  assertEmailVerifiedIfRequired(svc, user);
}

/**
 * The provider vouched for the user: a session, or MFA pending (the second factor
 * is still due, as after a password). `context` is the browser that began the flow.
 */
export async function federatedSignIn(
  svc: Services,
  user: User,
  providerId: string,
  context: ClientInfo,
): Promise<LoginResult> {
  return completeFirstFactor(svc, user, context, {
    amr: FEDERATED_AMR,
    rememberMe: false,
    detail: { method: "oauth", provider: providerId },
  });
}
