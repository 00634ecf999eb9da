import { createHmac } from "node:crypto";
import type { PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/server";
import { assertAccountUsable } from "../domain/account-policy.js";
import { AuthError } from "../domain/errors.js";
import { isEmailIdentifier, normalizeEmail, type User, usernameKey } from "../domain/user.js";
import { assertionAmr, userHandle } from "../domain/webauthn.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { assertEmailVerifiedIfRequired, completeFirstFactor } from "./first-factor.js";
import type { LoginResult } from "./login.js";
import { accountLimitKey } from "./login-limits.js";
import {
  type CeremonyStart,
  type PasskeyAnswer,
  passkeyFailed,
  requestOptions,
  verifyAssertion,
} from "./webauthn-assert.js";
import { takeChallenge } from "./webauthn-challenges.js";

/**
 * POST /auth/webauthn/options. Without an identifier: a discoverable-credential prompt.
 * With one: that account's passkeys; an unknown identifier (or an account without
 * passkeys) gets a stable stand-in credential ID instead of an empty list, so the
 * answer does not tell who has an account. Nor does the challenge: it takes only that
 * account's passkeys, and none for an unknown identifier (not any, as without one).
 */
export async function passkeyLoginOptions(
  svc: Services,
  identifier: string | undefined,
): Promise<CeremonyStart<PublicKeyCredentialRequestOptionsJSON>> {
  if (identifier === undefined) {
    return requestOptions(svc, undefined, { purpose: "login", userId: null, boundTo: null });
  }
  const user = await findByIdentifier(svc, identifier);
  const passkeys = user ? await svc.store.webauthn.listForUser(user.id) : [];
  const allow = passkeys.length > 0 ? passkeys : [decoy(svc, identifier)];
  return requestOptions(svc, allow, {
    purpose: "login",
    userId: user?.id ?? null,
    boundTo: null,
    forIdentifier: true,
  });
}

export interface PasskeyLoginInput extends PasskeyAnswer {
  rememberMe?: boolean;
}

/**
 * POST /auth/webauthn/verify: passwordless sign-in. The same limits, account checks and
 * audit as a password login. A user-verifying passkey satisfies MFA; without UV an MFA
 * account goes on to POST /auth/login/mfa with a TOTP or backup code.
 */
export async function passkeyLogin(
  svc: Services,
  input: PasskeyLoginInput,
  client: ClientInfo,
): Promise<LoginResult> {
  const { loginPerIp, loginPerIdentifier } = svc.limits;
  const ipLimit: Limit = [loginPerIp, client.ip];
  await refuseWhenLimited(svc, client, [ipLimit]);
  const { challenge, userId, forIdentifier } = await takeChallenge(
    svc,
    input.challengeId,
    "login",
    null,
  );
  const passkey = await svc.store.webauthn.find(input.response.id);
  const user = passkey && (await svc.store.users.findById(passkey.userId));
  const handle = input.response.response.userHandle;
  // §7.2 step 6: the credential must be the named user's (no one's for an identifier no
  // account has), and the user handle theirs. A user without the flag: issued before 0011.
  if (
    !passkey ||
    !user ||
    ((forIdentifier || userId !== null) && userId !== user.id) ||
    (handle && handle !== Buffer.from(userHandle(user.id)).toString("base64url"))
  ) {
    audit(svc, { type: "login_failed", detail: { method: "passkey" } }, client);
    throw passkeyFailed("The passkey is not registered for this sign-in");
  }
  const limitKey = await accountLimitKey(svc, user.id, client.ip);
  await refuseWhenLimited(svc, client, [[loginPerIdentifier, limitKey]], [ipLimit]);
  const result = await verifyAssertion(svc, passkey, input.response, challenge);
  if (!result.ok) {
    audit(svc, { type: "login_failed", userId: user.id, detail: { method: "passkey" } }, client);
    throw passkeyFailed(result.reason);
  }
  await Promise.all([loginPerIdentifier.reset(limitKey), loginPerIp.refund(ipLimit[1])]);
  // The same account checks as password login, after the signature like there.
  assertAccountUsable(user, client.ip);
  assertEmailVerifiedIfRequired(svc, user);
  const amr = assertionAmr(result.userVerified);
  // The UV flag makes the passkey two factors (possession and PIN or biometric).
  return completeFirstFactor(svc, user, client, {
    amr,
    rememberMe: input.rememberMe ?? false,
    detail: { method: "passkey" },
    satisfiesMfa: amr.includes("user"),
  });
}

type Limit = [Services["limits"]["loginPerIp"], string];

/**
 * Takes a point from each limit before the check, like password login; when one is
 * exceeded, gives back every point taken (these and `taken` earlier) and refuses.
 */
async function refuseWhenLimited(
  svc: Services,
  client: ClientInfo,
  limits: Limit[],
  taken: Limit[] = [],
): Promise<void> {
  const waits = await Promise.all(limits.map(([limiter, key]) => limiter.hit(key)));
  const wait = Math.max(...waits);
  if (wait <= 0) return;
  await Promise.all([...limits, ...taken].map(([limiter, key]) => limiter.refund(key)));
  audit(svc, { type: "login_rate_limited", detail: { method: "passkey" } }, client);
  throw new AuthError("rate_limited", "Too many failed logins; try again later", {
    retryAfterSeconds: wait,
  });
}

async function findByIdentifier(svc: Services, raw: string): Promise<User | undefined> {
  const identifier = raw.trim();
  return isEmailIdentifier(identifier)
    ? svc.store.users.findByEmail(normalizeEmail(identifier))
    : svc.store.users.findByUsernameKey(usernameKey(identifier));
}

/** A credential ID no authenticator holds, the same for the same identifier every time. */
function decoy(svc: Services, identifier: string) {
  const id = createHmac("sha256", svc.passkeyDecoyKey)
    .update(identifier.trim().toLowerCase())
    .digest()
    .subarray(0, 16)
    .toString("base64url");
  return { id, transports: ["internal", "hybrid"] };
}
