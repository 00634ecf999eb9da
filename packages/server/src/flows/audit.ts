import type { ClientInfo, Services } from "../services.js";
import type { AuditEvent } from "../store/audit.js";

/**
 * Writes a security event without holding up the response. A failed write is
 * logged; it never fails the request that caused it.
 */
export function audit(
  svc: Services,
  event: Omit<AuditEvent, "ip" | "userAgent">,
  client?: ClientInfo,
): void {
  svc.store.audit
    .record({ ...event, ip: client?.ip, userAgent: client?.userAgent }, svc.clock.now())
    .catch((err: unknown) => svc.log.error({ err, event: event.type }, "audit write failed"));
}
