import * as client from "openid-client";
import { sha256 } from "../../domain/crypto.js";
import { AuthError, validationFailed } from "../../domain/errors.js";
import type { ClientInfo, Services } from "../../services.js";
import { linkTarget } from "./link.js";
import { type OAuthProvider, providerOf } from "./providers.js";

/** How long the user has at the provider: the lifetime of the start cookie. */
export const START_TTL_S = 600;
const SEAL_PURPOSE = "oauth-start";
/**
 * Longest `redirect` kept: with it, the user agent's digest and a link, the start
 * cookie stays within the 4096 bytes browsers store (RFC 6265 §6.1). A bigger cookie is
 * silently dropped, and the callback could then only fail, with no redirect to go back to.
 */
export const MAX_REDIRECT_LENGTH = 2048;

/** What the start cookie carries to the callback, sealed (domain/sealed-state.ts). */
export interface StartState {
  provider: string;
  state: string;
  nonce: string;
  /** PKCE code verifier (RFC 7636 §4.1); only its S256 challenge left the server. */
  verifier: string;
  /** Where the browser goes afterwards; null: the default page. */
  redirect: string | null;
  /** Set when this flow connects the provider to an existing account (a link token). */
  linkUserId: string | null;
  /**
   * With linkUserId: the session the link token came from. The callback links only while
   * it is live. Absent from a start cookie sealed before it existed: such a link is refused.
   */
  linkSessionId?: string;
  /** The browser's IP as /start saw it: the session that results records it. */
  ip: string;
  /**
   * SHA-256 of the user agent that began the flow (null: none), which the callback must
   * come from. A digest, not the header: escaped in the sealed JSON, a 512-character user
   * agent of quotes took the cookie past the 4096 bytes a browser keeps.
   */
  userAgentDigest: string | null;
  /** The user agent itself, in a start cookie sealed before userAgentDigest. */
  userAgent?: string | null;
}

/** What StartState keeps of a user agent. */
export const userAgentDigest = (userAgent: string | null): string | null =>
  userAgent === null ? null : sha256(userAgent);

export interface StartInput {
  redirect?: string;
  link?: string;
}

/**
 * GET /auth/oauth/:provider/start. PKCE with S256, a fresh `state` (CSRF, RFC 6749
 * §10.12) and `nonce` (replay, OIDC Core §3.1.2.1) per attempt; all of them stay
 * with the browser in a sealed cookie, never in server memory, so any node can
 * take the callback.
 */
export async function startOAuth(
  svc: Services,
  providerId: string,
  input: StartInput,
  client_: ClientInfo,
): Promise<{ authUrl: string; sealed: string }> {
  const provider = providerOf(svc, providerId);
  const redirect = input.redirect === undefined ? null : allowedRedirect(svc, input.redirect);
  const link = input.link === undefined ? undefined : await linkTarget(svc, input.link);
  const start: StartState = {
    provider: provider.settings.id,
    state: client.randomState(),
    nonce: client.randomNonce(),
    verifier: client.randomPKCECodeVerifier(),
    redirect,
    linkUserId: link?.userId ?? null,
    ...(link ? { linkSessionId: link.sessionId } : {}),
    ip: client_.ip,
    userAgentDigest: userAgentDigest(client_.userAgent),
  };
  const authUrl = await authorizationUrl(svc, provider, start);
  const sealed = svc.oauth.sealer.seal(SEAL_PURPOSE, start, svc.clock.now() + START_TTL_S * 1000);
  return { authUrl, sealed };
}

async function authorizationUrl(
  svc: Services,
  provider: OAuthProvider,
  start: StartState,
): Promise<string> {
  const config = await provider.configuration().catch((err: unknown) => {
    svc.log.warn({ err, provider: provider.settings.id }, "oauth discovery failed");
    throw new AuthError("oauth_failed", `${provider.settings.name} cannot be reached now`);
  });
  const params: Record<string, string> = {
    redirect_uri: provider.redirectUri,
    scope: provider.scope,
    state: start.state,
    code_challenge: await client.calculatePKCECodeChallenge(start.verifier),
    code_challenge_method: "S256",
  };
  if (provider.isOidc) params.nonce = start.nonce;
  return client.buildAuthorizationUrl(config, params).href;
}

/** The start cookie's content when genuine, unexpired and sealed by this deployment. */
export function openStartState(svc: Services, sealed: string | undefined): StartState | undefined {
  if (!sealed) return undefined;
  return svc.oauth.sealer.open(SEAL_PURPOSE, sealed, svc.clock.now()) as StartState | undefined;
}

/**
 * An absolute http(s) URL on an allowed origin: anything else would make us an open
 * redirector. The origin alone is not enough: `blob:https://app…` has the app's origin
 * yet is no page to land on, and userinfo (`https://evil.test@app…`) has no business
 * in a redirect but to make a link look like it goes somewhere else.
 */
function allowedRedirect(svc: Services, redirect: string): string {
  const url = URL.canParse(redirect) ? new URL(redirect) : undefined;
  const web = url?.protocol === "https:" || url?.protocol === "http:";
  const userinfo = url !== undefined && (url.username !== "" || url.password !== "");
  if (!url || !web || userinfo || !svc.config.allowedOrigins.includes(url.origin)) {
    throw validationFailed(
      "redirect",
      "must be an absolute http(s) URL on an allowed origin, without user info",
    );
  }
  // Measured as kept: percent-encoding can make the URL longer than what was sent.
  if (url.href.length > MAX_REDIRECT_LENGTH) {
    throw validationFailed("redirect", `must be at most ${MAX_REDIRECT_LENGTH} characters long`);
  }
  return url.href;
}
