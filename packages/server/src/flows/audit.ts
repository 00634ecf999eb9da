import type { ClientInfo, Services } from "../services.js";
import type { AuditEvent } from "../store/audit.js";

/**
 * Records a security event without holding up the response (batched, see AuditLog).
 * A failed write is logged; it never fails the request that caused it.
 */
export function audit(
  svc: Services,
  event: Omit<AuditEvent, "ip" | "userAgent">,
  client?: ClientInfo,
): void {
  svc.auditLog.add({ ...event, ip: client?.ip, userAgent: client?.userAgent });
  svc.metrics.recordEvent(event.type);
}
