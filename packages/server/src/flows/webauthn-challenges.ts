import { randomBytes } from "node:crypto";
import { randomToken, sha256 } from "../domain/crypto.js";
import { AuthError } from "../domain/errors.js";
import { CHALLENGE_TTL_MS, type ChallengePurpose } from "../domain/webauthn.js";
import type { Services } from "../services.js";

/** 256 random bits for the authenticator to sign (WebAuthn §13.4.3 asks for at least 128). */
export const newChallengeBytes = () => new Uint8Array(randomBytes(32));

export interface ChallengeRequest {
  /** `options.challenge` as sent to the browser (base64url). */
  challenge: string;
  purpose: ChallengePurpose;
  userId: string | null;
  boundTo: string | null;
  /** A passwordless sign-in for a named account (see `Challenge`). */
  forIdentifier?: boolean;
}

/** Keeps the challenge for 5 minutes; the client names it by the returned id (only its hash is stored). */
export async function issueChallenge(svc: Services, request: ChallengeRequest): Promise<string> {
  const challengeId = randomToken();
  const now = svc.clock.now();
  await svc.store.webauthn.createChallenge(
    sha256(challengeId),
    {
      ...request,
      forIdentifier: request.forIdentifier ?? false,
      expiresAt: now + CHALLENGE_TTL_MS,
    },
    now,
  );
  return challengeId;
}

/**
 * Uses the challenge up: it answers one ceremony, of its purpose, for what it was
 * bound to (session, MFA token or nothing). Unknown, used, expired and foreign
 * challenges are all one answer.
 */
export async function takeChallenge(
  svc: Services,
  challengeId: string,
  purpose: ChallengePurpose,
  boundTo: string | null,
): Promise<{ challenge: string; userId: string | null; forIdentifier: boolean }> {
  const found = await useChallenge(svc, challengeId, purpose, boundTo);
  if (!found) throw new AuthError("webauthn_failed", CHALLENGE_REFUSED);
  return found;
}

export const CHALLENGE_REFUSED = "The challenge is unknown, already used or expired";

/** `takeChallenge` without the throw: undefined when refused. */
export const useChallenge = (
  svc: Services,
  challengeId: string,
  purpose: ChallengePurpose,
  boundTo: string | null,
) => svc.store.webauthn.consumeChallenge(sha256(challengeId), purpose, boundTo, svc.clock.now());
