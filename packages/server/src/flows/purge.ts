import type { Services } from "../services.js";

/** Ended sessions are kept this long after their end (for the sessions audit trail), then deleted. */
export const ENDED_SESSION_RETENTION_MS = 24 * 3600_000;

/** Sessions and mailed links that can no longer be used. */
export async function purgeEnded(svc: Services): Promise<number> {
  const before = svc.clock.now() - ENDED_SESSION_RETENTION_MS;
  const sessions = await svc.store.sessions.purgeEndedBefore(before);
  const links = await svc.store.oneTimeTokens.purgeBefore(before);
  // An expired passkey challenge, used or not, can never be used again.
  await svc.store.webauthn.purgeChallengesBefore(svc.clock.now());
  if (sessions + links > 0) svc.log.info({ sessions, links }, "purged ended sessions and links");
  return sessions + links;
}
