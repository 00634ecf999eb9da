import * as client from "openid-client";
import type { OAuthProviderConfig } from "../../config/oauth.js";
import { AuthError } from "../../domain/errors.js";
import type { Services } from "../../services.js";

/** How long one call to a provider (discovery, token, user info) may take. */
const PROVIDER_TIMEOUT_S = 10;

const DEFAULT_SCOPES = {
  oidc: ["openid", "email", "profile"],
  oauth2: ["read:user", "user:email"],
};

export interface ProviderSummary {
  id: string;
  name: string;
  type: "oidc" | "oauth2";
}

/**
 * One configured provider and its openid-client Configuration. An OIDC provider is
 * discovered on first use, not at start, so an IdP that is down never stops the
 * server; a failed discovery is retried by the next sign-in.
 */
export class OAuthProvider {
  readonly redirectUri: string;
  readonly scope: string;
  private pending: Promise<client.Configuration> | undefined;

  constructor(
    readonly settings: OAuthProviderConfig,
    publicUrl: string,
  ) {
    this.redirectUri = `${publicUrl}/auth/oauth/${settings.id}/callback`;
    this.scope = (settings.scopes ?? DEFAULT_SCOPES[settings.type]).join(" ");
  }

  get summary(): ProviderSummary {
    return { id: this.settings.id, name: this.settings.name, type: this.settings.type };
  }

  get isOidc(): boolean {
    return this.settings.type === "oidc";
  }

  configuration(): Promise<client.Configuration> {
    this.pending ??= this.build().catch((err: unknown) => {
      this.pending = undefined;
      throw err;
    });
    return this.pending;
  }

  private async build(): Promise<client.Configuration> {
    const s = this.settings;
    const metadata = { client_secret: s.clientSecret, timeout: PROVIDER_TIMEOUT_S };
    // Without a secret the client is public and proves itself with PKCE alone.
    const auth = s.clientSecret ? client.ClientSecretPost(s.clientSecret) : client.None();
    if (s.type === "oidc") {
      const issuer = new URL(s.issuer as string);
      return client.discovery(issuer, s.clientId, metadata, auth, {
        timeout: PROVIDER_TIMEOUT_S,
        execute: [
          ...(issuer.protocol === "http:" ? [client.allowInsecureRequests] : []),
          // openid-client trusts the token endpoint's TLS for the ID token by default (OIDC
          // Core §3.1.3.7 item 6 allows it); this checks its signature by the provider's
          // JWKS too, as the docs promise and as plain HTTP on loopback needs.
          client.enableNonRepudiationChecks,
        ],
      });
    }
    const authorization = new URL(s.authorizationUrl as string);
    const config = new client.Configuration(
      {
        // Plain OAuth 2.0 has no issuer; the authorization server's origin stands in.
        issuer: authorization.origin,
        authorization_endpoint: authorization.href,
        token_endpoint: s.tokenUrl as string,
      },
      s.clientId,
      metadata,
      auth,
    );
    config.timeout = PROVIDER_TIMEOUT_S;
    // Configuration allows plain HTTP only on loopback (config/oauth.ts).
    if ([s.authorizationUrl, s.tokenUrl, s.userInfoUrl, s.emailsUrl].some(isHttp)) {
      client.allowInsecureRequests(config);
    }
    return config;
  }
}

const isHttp = (url: string | undefined) => url?.startsWith("http:") ?? false;

/** The configured providers by id. */
export class OAuthProviders {
  private readonly byId: Map<string, OAuthProvider>;

  constructor(providers: readonly OAuthProviderConfig[], publicUrl: string) {
    this.byId = new Map(providers.map((p) => [p.id, new OAuthProvider(p, publicUrl)]));
  }

  list(): ProviderSummary[] {
    return [...this.byId.values()].map((p) => p.summary);
  }

  get(id: string): OAuthProvider | undefined {
    return this.byId.get(id);
  }
}

export function providerOf(svc: Services, id: string): OAuthProvider {
  const provider = svc.oauth.providers.get(id);
  if (!provider) throw new AuthError("not_found", `No sign-in provider ${id}`);
  return provider;
}
