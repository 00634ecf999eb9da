import { safeEqual } from "../../domain/crypto.js";
import { AuthError } from "../../domain/errors.js";
import type { ClientInfo, Services } from "../../services.js";
import { audit } from "../audit.js";
import type { LoginResult } from "../login.js";
import { issueExchangeCode } from "./exchange.js";
import { linkToUser } from "./link.js";
import { fetchProfile } from "./profile.js";
import { providerOf } from "./providers.js";
import { assertMayFederate, federatedSignIn, federatedUser } from "./sign-in.js";
import { START_TTL_S, type StartState, userAgentDigest } from "./start.js";

export type CallbackResult =
  | LoginResult
  | { kind: "code"; code: string }
  | { kind: "linked"; provider: string };

const mismatch = () =>
  new AuthError("oauth_state_mismatch", "The sign-in did not start in this browser, or expired");

/**
 * GET /auth/oauth/:provider/callback with the start cookie's content. Every refusal
 * is an AuthError (the route sends the browser back with `?error=`), and audited.
 */
export async function oauthCallback(
  svc: Services,
  providerId: string,
  start: StartState,
  callbackUrl: URL,
  client: ClientInfo,
): Promise<CallbackResult> {
  try {
    return await finish(svc, providerId, start, callbackUrl, client);
  } catch (err) {
    if (err instanceof AuthError) {
      const detail = { provider: providerId, code: err.code };
      audit(svc, { type: "oauth_failed", userId: start.linkUserId ?? undefined, detail }, client);
    }
    throw err;
  }
}

async function finish(
  svc: Services,
  providerId: string,
  start: StartState,
  callbackUrl: URL,
  client: ClientInfo,
): Promise<CallbackResult> {
  const provider = providerOf(svc, providerId);
  if (start.provider !== provider.settings.id) throw mismatch();
  const params = callbackUrl.searchParams;
  // State first, errors too (RFC 6749 §4.1.2.1 returns it with them): a forged
  // `?error=` link is not the provider's answer and must not read as one.
  if (!safeEqual(params.get("state") ?? "", start.state)) throw mismatch();
  // The cookie belongs to the browser that began the flow (API.md keeps it "with the
  // browser context"): carried to another one it is refused, before the claim below, so
  // the rightful browser can still finish. Only the user agent is compared: the IP of a
  // real user may change at the provider (mobile networks, dual stack, pooled NAT).
  const startedBy = start.userAgentDigest ?? userAgentDigest(start.userAgent ?? null);
  if (userAgentDigest(client.userAgent) !== startedBy) throw mismatch();
  const error = params.get("error");
  // The user said no, or the provider refused the request.
  if (error === "access_denied") throw new AuthError("oauth_denied", "Access was denied");
  if (error !== null) {
    throw new AuthError("oauth_failed", `${provider.settings.name} refused the request`);
  }
  // Each start answers one callback, even if the cookie and URL are replayed together.
  const now = svc.clock.now();
  if (!(await svc.replay.claim(`oauth-state:${start.state}`, START_TTL_S * 1000, now))) {
    throw mismatch();
  }
  // Refused before the provider's code is spent: a link begun before the upgrade that
  // added linkSessionId cannot tell whose session asked for it.
  if (start.linkUserId !== null && start.linkSessionId === undefined) {
    throw new AuthError(
      "invalid_or_expired_token",
      "The link started before an upgrade; start again",
    );
  }
  const profile = await fetchProfile(svc, provider, start, callbackUrl);
  if (start.linkUserId !== null && start.linkSessionId !== undefined) {
    const target = { userId: start.linkUserId, sessionId: start.linkSessionId };
    await linkToUser(svc, provider, target, profile, client);
    return { kind: "linked", provider: provider.settings.id };
  }
  const user = await federatedUser(svc, provider, profile, client);
  assertMayFederate(svc, user, client.ip);
  // The user agent is the one that began the flow (checked above).
  const context = { ip: start.ip, userAgent: client.userAgent };
  if (svc.config.tokens.delivery === "body") {
    return {
      kind: "code",
      code: await issueExchangeCode(svc, user, provider.settings.id, context),
    };
  }
  return federatedSignIn(svc, user, provider.settings.id, context);
}
