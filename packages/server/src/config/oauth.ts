import type { ConfigInput } from "./schema.js";

export type OAuthProviderConfig = ConfigInput["oauth"]["providers"][number];

/** What the schema cannot say about `oauth.providers`: checked once at start, like the rest. */
export function oauthConfigProblem(c: ConfigInput): string | undefined {
  const seen = new Set<string>();
  for (const [i, p] of c.oauth.providers.entries()) {
    const at = `oauth.providers.${i}`;
    if (seen.has(p.id)) return `${at}.id: ${p.id} is used twice`;
    seen.add(p.id);
    const endpoints = ENDPOINTS.map((key) => p[key]);
    if (p.type === "oidc") {
      if (!p.issuer) return `${at}.issuer: required for type oidc`;
      if (endpoints.some(Boolean)) {
        return `${at}: type oidc finds its endpoints by discovery; drop the *Url keys`;
      }
    } else {
      if (p.issuer) return `${at}.issuer: only for type oidc`;
      for (const key of ENDPOINTS.slice(0, 3)) {
        if (!p[key]) return `${at}.${key}: required for type oauth2`;
      }
    }
    for (const key of ["issuer", ...ENDPOINTS] as const) {
      const url = p[key];
      if (url && !isSafeUrl(url)) {
        return `${at}.${key}: plain http is allowed on loopback only (127.0.0.1, localhost, [::1])`;
      }
    }
    // Encrypted at rest or not kept at all: never stored in the clear.
    if (p.storeTokens && !c.masterKey) return `${at}.storeTokens: needs masterKey`;
  }
  return undefined;
}

const ENDPOINTS = ["authorizationUrl", "tokenUrl", "userInfoUrl", "emailsUrl"] as const;

/**
 * HTTPS, or plain HTTP to this very machine (a development IdP, the tests): a code
 * or token in the clear never crosses a network.
 */
function isSafeUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { protocol, hostname } = new URL(url);
  return protocol === "https:" || ["127.0.0.1", "localhost", "[::1]"].includes(hostname);
}
