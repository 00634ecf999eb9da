/** What body mode keeps between requests. `accessExpiresAt` is epoch ms on this device's clock. */
export interface StoredTokens {
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
}

/**
 * Where body mode keeps tokens. Sync or async, so React Native's secure stores or
 * IndexedDB fit. `shared` says other tabs or processes see the same tokens: the
 * client then coordinates refreshes with them (a rotated refresh token is theirs too).
 */
export interface TokenStorage {
  load(): StoredTokens | null | Promise<StoredTokens | null>;
  save(tokens: StoredTokens | null): void | Promise<void>;
  readonly shared?: boolean;
}

/** The default: tokens live as long as the page or process does. */
export function memoryStorage(): TokenStorage {
  let tokens: StoredTokens | null = null;
  return {
    load: () => tokens,
    save: (next) => {
      tokens = next;
    },
  };
}

/**
 * Web Storage (localStorage) under one key, shared by the origin's tabs. Anything
 * script on the page can read it, an XSS included: in browsers prefer cookie mode,
 * where JavaScript never holds the refresh token.
 */
export function webStorage(storage: Storage, key = "latchkey.tokens"): TokenStorage {
  return {
    shared: true,
    load() {
      const raw = storage.getItem(key);
      if (!raw) return null;
      try {
        return JSON.parse(raw) as StoredTokens;
      } catch {
        return null;
      }
    },
    save(tokens) {
      if (tokens) storage.setItem(key, JSON.stringify(tokens));
      else storage.removeItem(key);
    },
  };
}
