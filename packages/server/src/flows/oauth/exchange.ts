import { randomToken, sha256 } from "../../domain/crypto.js";
import { AuthError } from "../../domain/errors.js";
import type { User } from "../../domain/user.js";
import type { ClientInfo, Services } from "../../services.js";
import type { LoginResult } from "../login.js";
import { assertMayFederate, federatedSignIn } from "./sign-in.js";

/** The callback's one-time code lives this long (API.md: 60 s). */
export const EXCHANGE_CODE_TTL_S = 60;

/**
 * `body` delivery: the callback cannot hand tokens to a script through a redirect,
 * so it hands a one-time code (stored only as its hash) for POST /auth/oauth/exchange.
 */
export async function issueExchangeCode(
  svc: Services,
  user: User,
  providerId: string,
  context: ClientInfo,
): Promise<string> {
  const code = randomToken();
  const expiresAt = svc.clock.now() + EXCHANGE_CODE_TTL_S * 1000;
  await svc.store.identities.saveCode(
    sha256(code),
    {
      userId: user.id,
      provider: providerId,
      ip: context.ip,
      userAgent: context.userAgent,
      sessionEpoch: user.sessionEpoch,
    },
    expiresAt,
  );
  return code;
}

/**
 * POST /auth/oauth/exchange: the code is used up by this call whatever happens next;
 * then tokens, or MFA pending. The session records the browser that began the flow.
 */
export async function exchangeOAuthCode(
  svc: Services,
  code: string,
  client: ClientInfo,
): Promise<LoginResult> {
  const taken = await svc.store.identities.takeCode(sha256(code), svc.clock.now());
  const user = taken && (await svc.store.users.findById(taken.userId));
  // Every session of the account ended since the code was handed (a password reset, the
  // address's owner claiming the account): the sign-in it stood for ended with them.
  if (!taken || !user || user.sessionEpoch !== taken.sessionEpoch) {
    throw new AuthError("invalid_code", "The code is not valid, was already used or has expired");
  }
  assertMayFederate(svc, user, client.ip);
  return federatedSignIn(svc, user, taken.provider, {
    ip: taken.ip ?? client.ip,
    userAgent: taken.userAgent,
  });
}
