import { assertAccountUsable } from "../domain/account-policy.js";
import {
  type ApiToken,
  grantsCovering,
  isExpired,
  type Scope,
  scopesGrant,
} from "../domain/api-token.js";
import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import type { User } from "../domain/user.js";
import type { Services } from "../services.js";
import type { ApiTokenContext } from "../store/api-tokens.js";

/** A request authenticated by an API token: the user it acts for, within the token's scopes. */
export interface ApiTokenAuth {
  user: User;
  apiToken: ApiToken;
}

/**
 * DESIGN.md step 2. The token is found by the SHA-256 of the presented secret, in the
 * cache and then by a unique index: neither lookup compares the secret itself, so its
 * timing says nothing about how close a guess came (the same reasoning as Lucia's
 * session ids). `scope` is what the route requires (the token's scopes must grant it,
 * per scopesGrant); `ip` is the caller's.
 */
export async function authenticateApiToken(
  svc: Services,
  token: string,
  scope: Scope,
  ip: string,
): Promise<ApiTokenAuth> {
  const hash = sha256(token);
  const context = svc.apiTokens.cached(hash) ?? (await svc.apiTokens.load(hash));
  return admitApiToken(svc, context, scope, ip);
}

/** The same decision without I/O when the token is cached; undefined means "ask the database". */
export function apiTokenAuthFromCache(
  svc: Services,
  token: string,
  scope: Scope,
  ip: string,
): ApiTokenAuth | undefined {
  const context = svc.apiTokens.cached(sha256(token));
  return context && admitApiToken(svc, context, scope, ip);
}

function admitApiToken(
  svc: Services,
  context: ApiTokenContext | undefined,
  scope: Scope,
  ip: string,
): ApiTokenAuth {
  if (!context) throw new AuthError("invalid_token", "The API token is not valid");
  if (isExpired(context.token, svc.clock.now())) {
    throw new AuthError("invalid_token", "The API token has expired");
  }
  assertAccountUsable(context.user, ip);
  if (!scopesGrant(context.token.scopes, scope)) {
    const covering = grantsCovering(scope).map((g) => `\`${g}\``);
    throw new AuthError(
      "forbidden",
      `This API token lacks the \`${scope}\` scope (any of ${covering.join(", ")} grants it)`,
    );
  }
  svc.apiTokens.touch(context);
  return { user: context.user, apiToken: context.token };
}
