import type { Redis } from "ioredis";
import type pino from "pino";

/**
 * How long a start waits for Redis to answer. A port that accepts and never answers (a
 * wrong service, a half-open firewall) would otherwise hold the start, and `serve`, for ever.
 */
export const REDIS_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Connects, or fails within REDIS_CONNECT_TIMEOUT_MS with one line that names REDIS_URL,
 * the host (never the password) and the cause. Loaded only when configured, like pg:
 * a single node without Redis never pays for it.
 */
export async function connectRedis(url: string, log: pino.Logger): Promise<Redis> {
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { lazyConnect: true });
  let cause: Error | undefined;
  const remember = (err: Error) => {
    cause ??= err;
  };
  redis.on("error", remember);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${REDIS_CONNECT_TIMEOUT_MS / 1000} s`)),
      REDIS_CONNECT_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([redis.connect(), timeout]);
  } catch (err) {
    redis.disconnect();
    const reason = (cause ?? (err as Error)).message;
    throw new Error(`Cannot connect to Redis (REDIS_URL, ${hostOf(url)}): ${reason}`);
  } finally {
    clearTimeout(timer);
    redis.off("error", remember);
  }
  return watch(redis, log);
}

/**
 * After the start, ioredis reconnects on its own and emits an error per failed attempt;
 * with no listener it prints each with a stack to stderr. One log line when the
 * connection is lost and one when it is back instead.
 */
export function watch(redis: Redis, log: pino.Logger): Redis {
  let down = false;
  redis.on("error", (err) => {
    if (down) return;
    down = true;
    log.error({ err }, "Redis connection lost; reconnecting");
  });
  redis.on("ready", () => {
    if (!down) return;
    down = false;
    log.info("Redis connection restored");
  });
  return redis;
}

/**
 * QUIT needs a live connection: while Redis is down it fails ("Connection is closed."),
 * which stopped a shutdown before the database was closed. Then the socket is just dropped.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status !== "ready") {
    redis.disconnect();
    return;
  }
  await redis.quit().catch(() => redis.disconnect());
}

function hostOf(url: string): string {
  return URL.canParse(url) ? new URL(url).host : "unparsable URL";
}
