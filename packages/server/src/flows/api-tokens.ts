import { assertMayAddLastingAccess } from "../domain/account-policy.js";
import {
  type ApiToken,
  apiTokenExpiry,
  generateApiToken,
  parseScopes,
} from "../domain/api-token.js";
import { sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import { uuidv7 } from "../domain/ids.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { holdLiveSession } from "./live-session.js";
import { noticeSecurityChange } from "./notices.js";

export interface CreateApiTokenInput {
  name: string;
  /** Checked here (parseScopes): 400 `validation_failed` unless each is an accepted form. */
  scopes: readonly string[];
  expiresInDays?: number;
}

/** The stored token and its secret, which is shown this once and kept only as a hash. */
export interface CreatedApiToken {
  apiToken: ApiToken;
  token: string;
}

/** The tier limit that caps how many live API tokens a user may hold. */
export const API_TOKENS_LIMIT = "apiTokens";

export async function createApiToken(
  svc: Services,
  auth: Pick<Authenticated, "user" | "session">,
  input: CreateApiTokenInput,
  client: ClientInfo,
): Promise<CreatedApiToken> {
  const scopes = parseScopes(input.scopes);
  const { user } = auth;
  assertMayAddLastingAccess(user, "create API tokens");
  const userId = user.id;
  const now = svc.clock.now();
  const limit = svc.config.tiers[user.tier]?.[API_TOKENS_LIMIT];
  const { token, prefix } = generateApiToken();
  // Count and insert in one transaction with the user's row held: concurrent
  // creations cannot all see room under the limit. And only while the session that asks
  // is live: a token must not outlive a claim or reset that ended it meanwhile.
  const apiToken = await svc.store.transaction(async (tx) => {
    await holdLiveSession(svc, tx, userId, auth.session.id);
    if (limit !== undefined) {
      const live = (await tx.apiTokens.listForUser(userId)).filter(
        (t) => t.expiresAt === null || t.expiresAt > now,
      );
      if (live.length >= limit) {
        throw new AuthError("forbidden", `The ${user.tier} tier allows ${limit} API tokens`);
      }
    }
    return tx.apiTokens.create(
      {
        id: uuidv7(now),
        userId,
        name: input.name,
        prefix,
        tokenHash: sha256(token),
        scopes,
        expiresAt: apiTokenExpiry(now, input.expiresInDays),
      },
      now,
    );
  });
  audit(svc, { type: "api_token_created", userId, detail: { tokenId: apiToken.id } }, client);
  // A token outlives sessions and sign-ins: its owner hears of it, as of a new passkey.
  noticeSecurityChange(svc, user, `An API token named "${apiToken.name}" was created.`, client);
  return { apiToken, token };
}

export const listApiTokens = (svc: Services, userId: string) =>
  svc.store.apiTokens.listForUser(userId);

/** Another user's token answers exactly like a missing one. */
export async function deleteApiToken(
  svc: Services,
  userId: string,
  id: string,
  client: ClientInfo,
): Promise<void> {
  if (!(await svc.apiTokens.delete(id, userId))) throw new AuthError("not_found", "No such token");
  audit(svc, { type: "api_token_deleted", userId, detail: { tokenId: id } }, client);
}
