import { createRemoteJWKSet, customFetch, errors, type JWTVerifyGetKey } from "jose";

/** How long a fetched JWKS is used before it is fetched again (jose's default). */
const MAX_AGE_MS = 10 * 60_000;

/** The JWKS could not be fetched lately and the next attempt is not due yet. */
class JwksCoolingDown extends Error {
  override name = "JwksCoolingDown";
}

/**
 * Latchkey's JWKS, fetched by jose, with every fetch (not only every successful one)
 * starting the cooldown. jose's own cooldown counts from the last success, so while the
 * JWKS answers errors each token with an unknown (forged) `kid`, and each request once the
 * cache has aged, fetched it again: a storm against a Latchkey already in trouble. Here an
 * unknown `kid`, an aged cache or a failed fetch reaches the network at most once per
 * `cooldownMs`; meanwhile, without keys fetched in the last 10 minutes, tokens are
 * refused as unavailable (fail closed).
 *
 * Latchkey signs with a new key the moment it rotates, so a token with an unknown `kid`
 * that arrives within the cooldown waits for the next allowed fetch instead of being
 * refused: a rotation just after a fetch would otherwise fail every new token for the
 * rest of the cooldown. Forged kids wait too, and still cost one fetch per cooldown.
 */
export function remoteKeySet(
  url: URL,
  cooldownMs: number,
  clock: { now(): number },
): JWTVerifyGetKey {
  let attemptedAt = Number.NEGATIVE_INFINITY;
  let loadedAt = Number.NEGATIVE_INFINITY;
  const remote = createRemoteJWKSet(url, {
    // When to fetch is decided below; jose fetches only when asked.
    cooldownDuration: Number.POSITIVE_INFINITY,
    cacheMaxAge: Number.POSITIVE_INFINITY,
    [customFetch]: (input, init) => {
      attemptedAt = clock.now();
      return fetch(input, init);
    },
  });
  const due = () => remote.reloading || clock.now() - attemptedAt >= cooldownMs;
  const reload = async () => {
    await remote.reload(); // concurrent callers share one fetch
    loadedAt = clock.now();
  };
  /** The fetch the cooldown allows next, one for every caller waiting on an unknown kid. */
  let scheduled: Promise<void> | undefined;
  const nextReload = () => {
    if (!scheduled) {
      const last = attemptedAt;
      scheduled = sleep(last + cooldownMs - clock.now())
        // A fetch started meanwhile (its cooldown ended too) is the one allowed: share it.
        .then(() => (attemptedAt === last || remote.reloading ? reload() : undefined))
        .finally(() => {
          scheduled = undefined;
        });
    }
    return scheduled;
  };

  return async (header, token) => {
    // No keys yet, or aged ones: fetch, unless a fetch failed within the cooldown. A failed
    // refetch for an unknown kid leaves the keys held, so forged kids cannot refuse real tokens.
    if (remote.jwks() === undefined || clock.now() - loadedAt >= MAX_AGE_MS) {
      if (!due()) throw new JwksCoolingDown("The JWKS could not be fetched lately");
      await reload();
    }
    try {
      return await remote(header, token);
    } catch (err) {
      // A rotation: a kid we have not seen yet. Forged kids cost one fetch per cooldown.
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      await (due() ? reload() : nextReload());
      return remote(header, token);
    }
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
