import type { ChallengePurpose } from "../domain/webauthn.js";
import type { Services } from "../services.js";
import { type PasskeyAnswer, verifyAssertion } from "./webauthn-assert.js";
import { CHALLENGE_REFUSED, useChallenge } from "./webauthn-challenges.js";

/**
 * A passkey of `userId` answering a challenge of `purpose` bound to `boundTo` (the MFA
 * token or the session): the second factor and step-up share this. Whether the
 * authenticator verified the user is answered for the caller to weigh.
 */
export async function acceptPasskey(
  svc: Services,
  userId: string,
  purpose: Extract<ChallengePurpose, "mfa" | "step_up">,
  boundTo: string,
  answer: PasskeyAnswer,
): Promise<{ ok: true; userVerified: boolean } | { ok: false; reason: string }> {
  const taken = await useChallenge(svc, answer.challengeId, purpose, boundTo);
  if (!taken || taken.userId !== userId) return { ok: false, reason: CHALLENGE_REFUSED };
  const passkey = await svc.store.webauthn.find(answer.response.id);
  if (!passkey || passkey.userId !== userId) {
    return { ok: false, reason: "The passkey is not registered for this account" };
  }
  return verifyAssertion(svc, passkey, answer.response, taken.challenge);
}
