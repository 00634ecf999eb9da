import { AuthError } from "../domain/errors.js";
import { uuidv7 } from "../domain/ids.js";
import { normalizeEmail } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { isUniqueViolation } from "../store/db.js";
import type { NewUser } from "../store/users.js";
import { audit } from "./audit.js";
import { createSession, type IssuedTokens, issueForSession } from "./issue-tokens.js";

const PASSWORD_SESSION = { amr: ["pwd"], rememberMe: false };

export interface RegisterInput {
  email: string;
  password: string;
  username?: string;
}

/** A new account and its first session, written in one transaction. */
export async function register(
  svc: Services,
  input: RegisterInput,
  client: ClientInfo,
): Promise<IssuedTokens> {
  svc.hasher.check(input.password);
  const passwordHash = await svc.hasher.hash(input.password); // before the transaction: it takes ms
  const tokens = await createUserWithSession(svc, client, {
    id: uuidv7(svc.clock.now()),
    email: normalizeEmail(input.email),
    username: input.username ?? null,
    passwordHash,
    role: "user",
  });
  audit(svc, { type: "register", userId: tokens.user.id, sessionId: tokens.sessionId }, client);
  return tokens;
}

/**
 * Inserts the user and starts a session atomically. `guard` runs first inside
 * the transaction (setup uses it to refuse a second admin).
 */
export async function createUserWithSession(
  svc: Services,
  client: ClientInfo,
  user: NewUser,
  guard?: (tx: Services["store"]) => Promise<void>,
): Promise<IssuedTokens> {
  try {
    const { created, session, refreshToken } = await svc.store.transaction(async (tx) => {
      await guard?.(tx);
      const created = await tx.users.create(user, svc.clock.now());
      return { created, ...(await createSession(svc, tx, created, client, PASSWORD_SESSION)) };
    });
    // Signing happens after commit: the transaction (on SQLite, the only connection) stays short.
    return issueForSession(svc, created, session, refreshToken);
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new AuthError("conflict", "An account with this email or username already exists");
    }
    throw err;
  }
}
