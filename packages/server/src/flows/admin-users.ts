import { AuthError } from "../domain/errors.js";
import type { User } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import type { Store } from "../store/index.js";
import type { AdminChange } from "../store/users.js";
import { audit } from "./audit.js";

/** Who acts: the admin's user id and client, for the audit trail. */
export interface AdminActor {
  userId: string;
  client: ClientInfo;
}

/**
 * PATCH /admin/users/:id. Disabling ends every session of the user in the same
 * transaction, and enabling again deletes their API tokens; every node then forgets what
 * it cached for the user, so the change (and a new role or tier, read by the server's own
 * checks) applies at once.
 */
export async function updateUser(
  svc: Services,
  actor: AdminActor,
  userId: string,
  change: AdminChange,
): Promise<User> {
  assertKnownTier(svc, change.tier);
  const { user, revoked, apiTokensDeleted } = await svc.store.transaction(async (tx) => {
    const before = await tx.users.findById(userId);
    if (!before) throw new AuthError("not_found", "No such user");
    const losesAdmin =
      isEnabledAdmin(before) &&
      ((change.role !== undefined && change.role !== "admin") || change.disabled === true);
    if (losesAdmin) await assertAnotherAdmin(tx, userId);
    const user = await tx.users.adminUpdate(userId, change, svc.clock.now());
    if (!user) throw new AuthError("not_found", "No such user");
    const ending = change.disabled === true && !before.disabled;
    const revoked = ending
      ? await svc.sessions.revokeAllForUser(userId, "account_disabled", undefined, tx)
      : [];
    // Disabling contains an account: its API tokens answer 403 account_disabled meanwhile.
    // Enabling it again must not bring back a token minted by whoever it was contained
    // from (the same reasoning as a password reset), so that is when they go.
    const enabling = change.disabled === false && before.disabled;
    const apiTokensDeleted = enabling ? await tx.apiTokens.deleteForUser(userId) : 0;
    return { user, revoked, apiTokensDeleted };
  });
  svc.sessions.userChanged(userId);
  audit(
    svc,
    {
      type: "admin_user_updated",
      userId,
      detail: { by: actor.userId, change, sessionsRevoked: revoked.length, apiTokensDeleted },
    },
    actor.client,
  );
  return user;
}

/** DELETE /admin/users/:id: the account with every session and token (ON DELETE CASCADE). */
export async function deleteUser(svc: Services, actor: AdminActor, userId: string): Promise<void> {
  await svc.store.transaction(async (tx) => {
    const target = await tx.users.findById(userId);
    if (!target) throw new AuthError("not_found", "No such user");
    await assertNotLastAdmin(tx, target);
    await tx.users.delete(userId);
  });
  svc.sessions.userChanged(userId);
  audit(svc, { type: "admin_user_deleted", userId, detail: { by: actor.userId } }, actor.client);
}

/** POST /admin/users/:id/sessions/revoke: signs the user out everywhere. */
export async function revokeUserSessions(
  svc: Services,
  actor: AdminActor,
  userId: string,
): Promise<number> {
  if (!(await svc.store.users.findById(userId))) throw new AuthError("not_found", "No such user");
  const revoked = await svc.sessions.revokeAllForUser(userId, "admin");
  audit(
    svc,
    {
      type: "admin_sessions_revoked",
      userId,
      detail: { by: actor.userId, revoked: revoked.length },
    },
    actor.client,
  );
  return revoked.length;
}

const isEnabledAdmin = (user: User) => user.role === "admin" && !user.disabled;

/** Before `user` goes (by an admin or by themselves): never the last enabled admin. */
export async function assertNotLastAdmin(tx: Store, user: User): Promise<void> {
  if (isEnabledAdmin(user)) await assertAnotherAdmin(tx, user.id);
}

/** The deployment must keep one enabled admin, or nobody could undo the change. */
async function assertAnotherAdmin(tx: Store, userId: string): Promise<void> {
  const admins = await tx.users.enabledAdminIds(tx.dialect === "postgres");
  if (!admins.some((id) => id !== userId)) {
    throw new AuthError(
      "conflict",
      "This is the last enabled admin; promote another admin before demoting, disabling or deleting it",
    );
  }
}

/** A tier must be configured: its limits are what GET /users/me reports and tokens enforce. */
function assertKnownTier(svc: Services, tier: string | undefined): void {
  if (tier !== undefined && !(tier in svc.config.tiers)) {
    throw new AuthError("validation_failed", `Unknown tier ${tier}`, {
      errors: [
        { path: "tier", message: `must be one of ${Object.keys(svc.config.tiers).join(", ")}` },
      ],
    });
  }
}
