import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import { isEmailIdentifier, normalizeEmail, usernameKey } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { assertEmailVerifiedIfRequired, completeFirstFactor } from "./first-factor.js";
import type { IssuedTokens } from "./issue-tokens.js";
import { accountLimitKey, nameLimitKey } from "./login-limits.js";
import type { MfaPending } from "./mfa-login.js";

export interface LoginInput {
  identifier: string;
  password: string;
  rememberMe?: boolean;
}

/** The password was right: a session, or (MFA on) a token to finish with POST /auth/login/mfa. */
export type LoginResult =
  | { kind: "tokens"; tokens: IssuedTokens }
  | ({ kind: "mfa_required" } & MfaPending);

const INVALID = "The identifier or password is incorrect";

/**
 * Password login. Unknown identifiers cost the same Argon2 work as wrong passwords
 * (ASVS 2.2.x), and only failures count towards the per-IP and per-identifier limits;
 * while either is exceeded even the right password is refused.
 */
export async function login(
  svc: Services,
  input: LoginInput,
  client: ClientInfo,
): Promise<LoginResult> {
  const identifier = input.identifier.trim();
  const idKey = identifier.toLowerCase();
  const user = isEmailIdentifier(identifier)
    ? await svc.store.users.findByEmail(normalizeEmail(identifier))
    : await svc.store.users.findByUsernameKey(usernameKey(identifier));
  // One bucket per account, whichever identifier names it (email or username), so
  // alternating them does not double the guesses; unknown names get their own.
  const limitKey = user
    ? await accountLimitKey(svc, user.id, client.ip)
    : await nameLimitKey(svc, idKey, client.ip);
  const { loginPerIp, loginPerIdentifier } = svc.limits;
  // Every attempt takes its point before the slow password check, so concurrent guesses
  // cannot all pass the limit before the first failure is counted. Refused and
  // successful attempts give theirs back: only failures stay counted.
  const [ipWait, idWait] = await Promise.all([
    loginPerIp.hit(client.ip),
    loginPerIdentifier.hit(limitKey),
  ]);
  const wait = Math.max(ipWait, idWait);
  if (wait > 0) {
    await Promise.all([loginPerIp.refund(client.ip), loginPerIdentifier.refund(limitKey)]);
    audit(svc, { type: "login_rate_limited", detail: { identifier: idKey } }, client);
    throw new AuthError("rate_limited", "Too many failed logins; try again later", {
      retryAfterSeconds: wait,
    });
  }

  const ok = user?.passwordHash
    ? await svc.hasher.verify(user.passwordHash, input.password)
    : await svc.hasher.verifyDummy(input.password);
  if (!user?.passwordHash || !ok) {
    audit(svc, { type: "login_failed", userId: user?.id, detail: { identifier: idKey } }, client);
    throw new AuthError("invalid_credentials", INVALID);
  }
  await Promise.all([loginPerIdentifier.reset(limitKey), loginPerIp.refund(client.ip)]);
  // Checked after the password, so the answer never tells a guesser the account has IP rules.
  try {
    assertAccountUsable(user, client.ip);
  } catch (err) {
    const reason = err instanceof AuthError ? err.code : "refused";
    audit(
      svc,
      { type: "login_failed", userId: user.id, detail: { identifier: idKey, reason } },
      client,
    );
    throw err;
  }
  assertEmailVerifiedIfRequired(svc, user);

  if (svc.hasher.needsRehash(user.passwordHash)) {
    rehashInBackground(svc, user.id, user.passwordHash, input.password, client);
  }
  return completeFirstFactor(svc, user, client, {
    amr: ["pwd"],
    rememberMe: input.rememberMe ?? false,
  });
}

/**
 * Parameters changed since this hash was made: store a fresh one (OWASP: upgrade on login).
 * Only over the hash it verified: a reset or change that finished meanwhile stands. A
 * stored hash changing is a security event, audited like any other (README "Audit log").
 */
function rehashInBackground(
  svc: Services,
  userId: string,
  verified: string,
  password: string,
  client: ClientInfo,
) {
  svc.hasher
    .hash(password)
    .then(async (hash) => {
      if (await svc.store.users.replacePasswordHash(userId, verified, hash, svc.clock.now())) {
        audit(svc, { type: "password_rehashed", userId }, client);
      }
    })
    .catch((err: unknown) => svc.log.error({ err, userId }, "password rehash failed"));
}
