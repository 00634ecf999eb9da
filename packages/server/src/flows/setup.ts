import { AuthError } from "../domain/errors.js";
import { uuidv7 } from "../domain/ids.js";
import { assertPasswordAcceptable } from "../domain/password-policy.js";
import { normalizeEmail } from "../domain/user.js";
import type { ClientInfo, Services } from "../services.js";
import { audit } from "./audit.js";
import { sendVerification } from "./email-verification.js";
import type { IssuedTokens } from "./issue-tokens.js";
import { createUserWithSession } from "./register.js";

export interface SetupInput {
  username: string;
  email?: string;
  password: string;
}

const ALREADY = "Latchkey is already set up";

/**
 * Creates the first admin. One-shot even under concurrent calls: the `setup`
 * marker row is claimed in the same transaction that creates the user.
 */
export async function setup(
  svc: Services,
  input: SetupInput,
  client: ClientInfo,
): Promise<IssuedTokens> {
  if (await svc.store.users.any()) throw new AuthError("already_set_up", ALREADY);
  await assertPasswordAcceptable(input.password, input, svc.config.password);
  const passwordHash = await svc.hasher.hash(input.password);
  const tokens = await createUserWithSession(
    svc,
    client,
    {
      id: uuidv7(svc.clock.now()),
      email: input.email ? normalizeEmail(input.email) : null,
      username: input.username,
      passwordHash,
      role: "admin",
    },
    async (tx) => {
      if ((await tx.users.any()) || !(await tx.meta.claim("setup", new Date().toISOString()))) {
        throw new AuthError("already_set_up", ALREADY);
      }
    },
  );
  audit(svc, { type: "setup", userId: tokens.user.id, sessionId: tokens.sessionId }, client);
  sendVerification(svc, tokens.user, client);
  return tokens;
}
