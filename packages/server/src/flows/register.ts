import { AuthError } from "../domain/errors.js";
import { uuidv7 } from "../domain/ids.js";
import { assertPasswordAcceptable } from "../domain/password-policy.js";
import { normalizeEmail, usernameKey } from "../domain/user.js";
import { templates } from "../mail/templates.js";
import type { ClientInfo, Services } from "../services.js";
import { isUniqueViolation } from "../store/db.js";
import type { NewUser } from "../store/users.js";
import { audit } from "./audit.js";
import { sendVerification } from "./email-verification.js";
import { createSession, type IssuedTokens, issueForSession } from "./issue-tokens.js";
import { mailLater } from "./mail-links.js";

const PASSWORD_SESSION = { amr: ["pwd"], rememberMe: false };

export interface RegisterInput {
  email: string;
  password: string;
  username?: string;
}

/** Signed in at once, or (verification required) told to check the mailbox. */
export type RegisterResult =
  | { kind: "tokens"; tokens: IssuedTokens }
  | { kind: "verification_required" };

/**
 * A new account. Without required verification it is signed in at once (one
 * transaction: user and session) and mailed a link anyway. With it, no session
 * is made, and an address that already has an account gets the same answer
 * while its owner is told by mail, so sign-up does not reveal who has an account.
 */
export async function register(
  svc: Services,
  input: RegisterInput,
  client: ClientInfo,
): Promise<RegisterResult> {
  await assertPasswordAcceptable(input.password, input, svc.config.password);
  const passwordHash = await svc.hasher.hash(input.password); // before any lookup: same cost for all
  const user: NewUser = {
    id: uuidv7(svc.clock.now()),
    email: normalizeEmail(input.email),
    username: input.username ?? null,
    passwordHash,
    role: "user",
  };
  if (svc.config.emailVerificationRequired) {
    await registerUnverified(svc, user, client);
    return { kind: "verification_required" };
  }
  const tokens = await createUserWithSession(svc, client, user);
  audit(svc, { type: "register", userId: tokens.user.id, sessionId: tokens.sessionId }, client);
  sendVerification(svc, tokens.user, client);
  return { kind: "tokens", tokens };
}

/**
 * No session until the address is proven. The username is public, so a taken one
 * is refused first, whatever the address; a taken address answers like a new one
 * (both paths try the same INSERT) and its owner is told by mail.
 */
async function registerUnverified(svc: Services, user: NewUser, client: ClientInfo): Promise<void> {
  const email = user.email as string;
  if (user.username && (await svc.store.users.findByUsernameKey(usernameKey(user.username)))) {
    throw new AuthError("conflict", "This username is taken");
  }
  try {
    const created = await svc.store.users.create(user, svc.clock.now());
    audit(svc, { type: "register", userId: created.id }, client);
    sendVerification(svc, created, client);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // A username taken meanwhile; otherwise the address has an account.
    if (!(await svc.store.users.findByEmail(email))) {
      throw new AuthError("conflict", "This username is taken");
    }
    const signIn = `${svc.config.publicUrl}${svc.config.links.basePath}/login`;
    mailLater(svc, { to: email, kind: "account-exists", client }, async () =>
      templates.accountExists(svc.config.mail, signIn),
    );
  }
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
