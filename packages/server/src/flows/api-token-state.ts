import type { ApiTokenCache } from "../cache/api-token-cache.js";
import type { RevocationBus } from "../cache/revocation-bus.js";
import { LAST_USED_WRITE_INTERVAL_MS } from "../domain/api-token.js";
import type { Clock } from "../domain/clock.js";
import type { ApiTokenContext } from "../store/api-tokens.js";
import type { Store } from "../store/index.js";

/**
 * API-token reads for the hot path and every deletion, so that no deletion can
 * forget to evict the cache or tell the other nodes.
 */
export class ApiTokenState {
  constructor(
    private readonly store: Store,
    private readonly cache: ApiTokenCache,
    private readonly bus: RevocationBus,
    private readonly clock: Clock,
    private readonly onBackgroundError: (err: unknown) => void,
  ) {
    bus.subscribe((event) => {
      if (event.type === "api_token") cache.evict(event.hash);
      else if (event.type === "user") cache.evictUser(event.userId);
    });
  }

  cached(tokenHash: string): ApiTokenContext | undefined {
    return this.cache.get(tokenHash, this.clock.now());
  }

  async load(tokenHash: string): Promise<ApiTokenContext | undefined> {
    const now = this.clock.now();
    const epoch = this.cache.epoch;
    const loaded = await this.store.apiTokens.findContextByHash(tokenHash);
    if (loaded) this.cache.set(loaded, now, epoch);
    return loaded;
  }

  /** Records a use at most once a minute per token, off the response path. */
  touch(context: ApiTokenContext): void {
    const now = this.clock.now();
    const { token } = context;
    if (token.lastUsedAt !== null && now - token.lastUsedAt < LAST_USED_WRITE_INTERVAL_MS) return;
    token.lastUsedAt = now;
    this.store.apiTokens
      .touch(token.id, now, LAST_USED_WRITE_INTERVAL_MS)
      .catch(this.onBackgroundError);
  }

  /** Deletes one of the user's tokens; false when the user has no such token. */
  async delete(id: string, userId: string): Promise<boolean> {
    const hash = await this.store.apiTokens.delete(id, userId);
    if (hash === undefined) return false;
    this.bus.publish({ type: "api_token", hash });
    return true;
  }
}
