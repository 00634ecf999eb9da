import type { Services } from "../services.js";

/** Ended sessions are kept this long after their end (for the sessions audit trail), then deleted. */
export const ENDED_SESSION_RETENTION_MS = 24 * 3600_000;
/** Rows per DELETE: short statements, so a purge of millions never holds long locks. */
export const PURGE_BATCH = 10_000;

type Progress = (deletedSoFar: number) => void;
/** The purge needs only these, so the CLI can run it without starting a server. */
type PurgeServices = Pick<Services, "store" | "clock" | "config">;

/** Deletes sessions that ended more than a day ago, batch by batch; returns how many. */
export async function purgeEndedSessions(
  svc: PurgeServices,
  onProgress?: Progress,
): Promise<number> {
  const before = svc.clock.now() - ENDED_SESSION_RETENTION_MS;
  return inBatches((limit) => svc.store.sessions.purgeEndedBefore(before, limit), onProgress);
}

/** Deletes audit events older than the configured retention; returns how many. */
export async function purgeOldAuditEvents(
  svc: PurgeServices,
  onProgress?: Progress,
): Promise<number> {
  const before = svc.clock.now() - svc.config.operations.auditRetentionDays * 86_400_000;
  return inBatches((limit) => svc.store.audit.purgeBefore(before, limit), onProgress);
}

/**
 * The periodic job: ended sessions, mailed links that can no longer be used, old audit
 * events, guests nobody can sign in as again (after their sessions), and signing keys
 * no longer published.
 */
export async function purgeEnded(svc: Services): Promise<number> {
  const sessions = await purgeEndedSessions(svc);
  const before = svc.clock.now() - ENDED_SESSION_RETENTION_MS;
  const guests = await inBatches((limit) => svc.store.users.purgeUnreachableGuests(before, limit));
  const links = await svc.store.oneTimeTokens.purgeBefore(
    svc.clock.now() - ENDED_SESSION_RETENTION_MS,
  );
  const auditEvents = await purgeOldAuditEvents(svc);
  await svc.store.identities.purgeCodesBefore(svc.clock.now());
  // An expired passkey challenge, used or not, can never be used again.
  await svc.store.webauthn.purgeChallengesBefore(svc.clock.now());
  const signingKeys = await svc.store.signingKeys.purgeExpired(svc.clock.now());
  const total = sessions + guests + links + auditEvents + signingKeys;
  if (total > 0) {
    svc.log.info({ sessions, guests, links, auditEvents, signingKeys }, "purged expired rows");
  }
  return total;
}

async function inBatches(
  deleteBatch: (limit: number) => Promise<number>,
  onProgress?: Progress,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch(PURGE_BATCH);
    total += deleted;
    if (deleted > 0) onProgress?.(total);
    if (deleted < PURGE_BATCH) return total;
  }
}
