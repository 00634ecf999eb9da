import type { Services } from "../services.js";

/** Ended sessions are kept this long after their end (for the sessions audit trail), then deleted. */
export const ENDED_SESSION_RETENTION_MS = 24 * 3600_000;

export async function purgeEnded(svc: Services): Promise<number> {
  const purged = await svc.store.sessions.purgeEndedBefore(
    svc.clock.now() - ENDED_SESSION_RETENTION_MS,
  );
  if (purged > 0) svc.log.info({ purged }, "purged ended sessions");
  return purged;
}
