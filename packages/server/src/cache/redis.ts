import type { Redis } from "ioredis";
import type pino from "pino";
import { cannotConnect, within } from "../ops/connect.js";

/** How long a start waits for Redis to answer (see ops/connect.ts). */
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
  try {
    await within(redis.connect(), REDIS_CONNECT_TIMEOUT_MS);
  } catch (err) {
    redis.disconnect();
    const reason = (cause ?? (err as Error)).message;
    throw cannotConnect("Redis", "REDIS_URL", url, reason);
  } finally {
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
