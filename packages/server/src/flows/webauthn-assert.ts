import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialRequestOptionsJSON,
  verifyAuthenticationResponse,
} from "@simplewebauthn/server";
import { AuthError } from "../domain/errors.js";
import { CHALLENGE_TTL_MS, type Passkey } from "../domain/webauthn.js";
import type { Services } from "../services.js";
import { type ChallengeRequest, issueChallenge, newChallengeBytes } from "./webauthn-challenges.js";
import { CROSS_ORIGIN_FRAME, inCrossOriginFrame } from "./webauthn-frame.js";
import { webauthnLibrary } from "./webauthn-library.js";

/** What every options call answers (API.md, Passkeys). */
export interface CeremonyStart<T> {
  options: T;
  challengeId: string;
}

/** A finished ceremony as the client sends it back. */
export interface PasskeyAnswer {
  challengeId: string;
  response: AuthenticationResponseJSON;
}

/**
 * Request options for these credentials (none: a discoverable-credential prompt). UV is
 * preferred unless the caller will refuse an assertion without it.
 */
export async function requestOptions(
  svc: Services,
  allow: Array<Pick<Passkey, "id" | "transports">> | undefined,
  challenge: Omit<ChallengeRequest, "challenge">,
  userVerification: "preferred" | "required" = "preferred",
): Promise<CeremonyStart<PublicKeyCredentialRequestOptionsJSON>> {
  const { generateAuthenticationOptions } = await webauthnLibrary();
  const options = await generateAuthenticationOptions({
    rpID: svc.config.webauthn.rpId,
    allowCredentials: allow?.map((p) => ({ id: p.id, transports: p.transports })),
    challenge: newChallengeBytes(),
    timeout: CHALLENGE_TTL_MS,
    userVerification,
  });
  const challengeId = await issueChallenge(svc, { challenge: options.challenge, ...challenge });
  return { options, challengeId };
}

/**
 * Verifies an assertion by `passkey` over `challenge` (WebAuthn §7.2: type, challenge,
 * origin, no cross-origin frame, RP ID hash, UP flag, signature, and a signature counter
 * that must grow when either side is non-zero), then records the use with a
 * compare-and-set on the counter.
 * Answers whether the authenticator verified the user (UV flag).
 */
export async function verifyAssertion(
  svc: Services,
  passkey: Passkey,
  response: AuthenticationResponseJSON,
  challenge: string,
): Promise<{ ok: true; userVerified: boolean } | { ok: false; reason: string }> {
  if (inCrossOriginFrame(response.response.clientDataJSON)) {
    return { ok: false, reason: CROSS_ORIGIN_FRAME };
  }
  const { rpId, origins } = svc.config.webauthn;
  let info: Awaited<ReturnType<typeof verifyAuthenticationResponse>>["authenticationInfo"];
  try {
    const { verifyAuthenticationResponse } = await webauthnLibrary();
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: origins,
      expectedRPID: rpId,
      expectedType: "webauthn.get",
      credential: {
        id: passkey.id,
        publicKey: Buffer.from(passkey.publicKey, "base64url"),
        counter: passkey.counter,
        transports: passkey.transports,
      },
      // UV is recorded, not required: without it the passkey is one factor (see README).
      requireUserVerification: false,
    });
    if (!result.verified) return { ok: false, reason: "The signature is not valid" };
    info = result.authenticationInfo;
  } catch (err) {
    return { ok: false, reason: reasonOf(err) };
  }
  const recorded = await svc.store.webauthn.recordUse(
    passkey.id,
    passkey.counter,
    { counter: info.newCounter, backedUp: info.credentialBackedUp },
    svc.clock.now(),
  );
  if (!recorded) return { ok: false, reason: "The signature counter moved meanwhile" };
  return { ok: true, userVerified: info.userVerified };
}

/**
 * The library's reason, bounded: its own checks name what was wrong (origin, RP ID,
 * counter…), never a secret. A TypeError, RangeError or SyntaxError is its parser
 * tripping over bytes it could not decode; its message names library internals
 * ("Ae.get is not a function"), so the client hears only that the response is malformed.
 */
export const reasonOf = (err: unknown) =>
  err instanceof Error &&
  !(err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError)
    ? err.message.slice(0, 200)
    : "The response is malformed";

export const passkeyFailed = (reason: string) =>
  new AuthError("webauthn_failed", `The passkey response was refused: ${reason}`);
