import * as client from "openid-client";
import { AuthError } from "../../domain/errors.js";
import { EMAIL_ADDRESS } from "../../domain/user.js";
import type { Services } from "../../services.js";
import type { OAuthProvider } from "./providers.js";
import type { StartState } from "./start.js";

/** Who the provider says signed in. */
export interface FederatedProfile {
  subject: string;
  email: string | null;
  /** Only a provider's explicit assertion counts (OIDC `email_verified`, GitHub `verified`). */
  emailVerified: boolean;
  /** The provider's tokens, sealed; null unless the provider is set to keep them. */
  sealedTokens: string | null;
}

const MAX_SUBJECT = 255; // OIDC Core §2: `sub` is at most 255 ASCII characters
const MAX_EMAIL = 254;

/**
 * Code for tokens (PKCE verifier, expected state; for OIDC the ID token's signature
 * by the provider's JWKS, issuer, audience, expiry and nonce, all checked by
 * openid-client), then who signed in. Anything the provider refuses or sends
 * malformed is `oauth_failed`, logged here with the reason.
 */
export async function fetchProfile(
  svc: Services,
  provider: OAuthProvider,
  start: StartState,
  callbackUrl: URL,
): Promise<FederatedProfile> {
  try {
    const config = await provider.configuration();
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      ...(provider.isOidc ? { expectedNonce: start.nonce, idTokenExpected: true } : {}),
    });
    const identity = provider.isOidc
      ? await oidcIdentity(config, tokens)
      : await githubStyleIdentity(provider, config, tokens.access_token);
    return { ...identity, sealedTokens: sealTokens(svc, provider, tokens) };
  } catch (err) {
    svc.log.warn({ err, provider: provider.settings.id }, "oauth callback refused");
    throw new AuthError("oauth_failed", `Signing in with ${provider.settings.name} failed`);
  }
}

type Identity = Omit<FederatedProfile, "sealedTokens">;
type Tokens = Awaited<ReturnType<typeof client.authorizationCodeGrant>>;

/** ID token claims, completed by the UserInfo endpoint (whose `sub` must match, OIDC Core §5.3.2). */
async function oidcIdentity(config: client.Configuration, tokens: Tokens): Promise<Identity> {
  const claims = tokens.claims();
  if (!claims) throw new Error("no ID token");
  const info = config.serverMetadata().userinfo_endpoint
    ? await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    : {};
  const merged: Record<string, unknown> = { ...claims, ...info };
  // Some providers send the flag as a string ("true").
  const verified = merged.email_verified === true || merged.email_verified === "true";
  return identity(claims.sub, merged.email, verified);
}

/**
 * GitHub-style plain OAuth 2.0: `id` from the user endpoint is the subject; the
 * email is the primary one the emails endpoint marks verified, else the profile's
 * public email, which nothing vouches for.
 */
async function githubStyleIdentity(
  provider: OAuthProvider,
  config: client.Configuration,
  accessToken: string,
): Promise<Identity> {
  const { userInfoUrl, emailsUrl } = provider.settings;
  const user = (await getJson(config, accessToken, userInfoUrl as string)) as Record<
    string,
    unknown
  >;
  const id = user?.id;
  if (typeof id !== "number" && typeof id !== "string") throw new Error("user info has no id");
  if (emailsUrl) {
    const emails = await getJson(config, accessToken, emailsUrl);
    const primary = Array.isArray(emails)
      ? emails.find((e) => e?.primary === true && e?.verified === true)
      : undefined;
    if (primary) return identity(String(id), primary.email, true);
  }
  return identity(String(id), user.email, false);
}

async function getJson(config: client.Configuration, accessToken: string, url: string) {
  const response = await client.fetchProtectedResource(
    config,
    accessToken,
    new URL(url),
    "GET",
    undefined,
    new Headers({ accept: "application/json", "user-agent": "Latchkey" }),
  );
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return (await response.json()) as unknown;
}

/** An unpaired surrogate: with `u`, a whole pair is one code point and does not match. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * U+0000 in what a provider sends cannot be stored in PostgreSQL's text (the sign-in
 * failed there with internal_error, and went through on SQLite), and an unpaired surrogate
 * is stored as U+FFFD there (so two provider accounts could be one identity) but as its
 * bytes on SQLite: a subject with either is refused. An email is used only if the API
 * itself would take it as one: a malformed address (NUL, spaces, line breaks, no domain)
 * is not used.
 */
function identity(subject: string, email: unknown, verified: boolean): Identity {
  if (
    subject.length === 0 ||
    subject.length > MAX_SUBJECT ||
    subject.includes("\u0000") ||
    LONE_SURROGATE.test(subject)
  ) {
    throw new Error("bad subject");
  }
  const usable =
    typeof email === "string" && email.length <= MAX_EMAIL && EMAIL_ADDRESS.test(email);
  return { subject, email: usable ? email : null, emailVerified: usable && verified };
}

/** Kept only when configured, and then sealed with the master key (config requires one). */
function sealTokens(svc: Services, provider: OAuthProvider, tokens: Tokens): string | null {
  if (!provider.settings.storeTokens) return null;
  const expiresIn = tokens.expiresIn();
  return svc.box.seal(
    JSON.stringify({
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token ?? null,
      scope: tokens.scope ?? null,
      expiresAt: expiresIn === undefined ? null : svc.clock.now() + expiresIn * 1000,
    }),
  );
}
