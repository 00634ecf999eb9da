import { assertMayScreenLock } from "../domain/screen-lock.js";
import type { Services } from "../services.js";
import type { Authenticated } from "./authenticate.js";

/** POST /sessions/lock: locks this session now, until POST /auth/unlock; never a guest's. */
export async function lockSession(svc: Services, auth: Authenticated): Promise<void> {
  assertMayScreenLock(auth.user);
  await svc.sessions.lock(auth.session.id);
}
