import type {
  PublicKeyCredentialCreationOptionsJSON,
  RegistrationResponseJSON,
  Uint8Array_,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import { AuthError } from "../domain/errors.js";
import {
  type CoseKey,
  isUsablePasskeyKey,
  PASSKEY_ALGORITHMS,
} from "../domain/passkey-public-key.js";
import { CHALLENGE_TTL_MS, type Passkey, userHandle } from "../domain/webauthn.js";
import type { ClientInfo, Services } from "../services.js";
import { isUniqueViolation } from "../store/db.js";
import { audit } from "./audit.js";
import type { Authenticated } from "./authenticate.js";
import { holdLiveSession } from "./live-session.js";
import { noticeSecurityChange } from "./notices.js";
import { type CeremonyStart, passkeyFailed, reasonOf } from "./webauthn-assert.js";
import { issueChallenge, newChallengeBytes, takeChallenge } from "./webauthn-challenges.js";
import { CROSS_ORIGIN_FRAME, inCrossOriginFrame } from "./webauthn-frame.js";
import { webauthnHelpers, webauthnLibrary } from "./webauthn-library.js";

/** Enough for every device a person owns; bounds the excludeCredentials list and the table. */
export const MAX_PASSKEYS_PER_USER = 20;

const atCap = () =>
  new AuthError("conflict", `At most ${MAX_PASSKEYS_PER_USER} passkeys per account`);

/** POST /webauthn/register/options: creation options for the signed-in user. */
export async function registrationOptions(
  svc: Services,
  auth: Authenticated,
): Promise<CeremonyStart<PublicKeyCredentialCreationOptionsJSON>> {
  const { user, session } = auth;
  if (user.guest) throw new AuthError("forbidden", "Guests cannot register passkeys");
  const existing = await svc.store.webauthn.listForUser(user.id);
  // Checked again at verify: ceremonies started below the cap may end above it.
  if (existing.length >= MAX_PASSKEYS_PER_USER) throw atCap();
  const name = user.username ?? user.email ?? user.id;
  const { generateRegistrationOptions } = await webauthnLibrary();
  const options = await generateRegistrationOptions({
    rpName: svc.config.webauthn.rpName,
    rpID: svc.config.webauthn.rpId,
    userName: name,
    userDisplayName: name,
    userID: userHandle(user.id),
    challenge: newChallengeBytes(),
    timeout: CHALLENGE_TTL_MS,
    attestationType: "none",
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports })),
    authenticatorSelection: { residentKey: "preferred", userVerification: "preferred" },
    supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
  });
  const challengeId = await issueChallenge(svc, {
    challenge: options.challenge,
    purpose: "register",
    userId: user.id,
    boundTo: session.id,
  });
  return { options, challengeId };
}

export interface RegisterPasskeyInput {
  challengeId: string;
  response: RegistrationResponseJSON;
  name?: string;
}

/**
 * The library checks the attestation's signature (none, for format `none`), not that the
 * credential's key can verify anything: a key that cannot would refuse every sign-in.
 */
async function hasUsableKey(cosePublicKey: Uint8Array_): Promise<boolean> {
  const { isoCBOR } = await webauthnHelpers();
  return isUsablePasskeyKey(isoCBOR.decodeFirst<CoseKey>(cosePublicKey));
}

/** POST /webauthn/register/verify: the attestation ("none" accepted) becomes a stored passkey. */
export async function registerPasskey(
  svc: Services,
  auth: Authenticated,
  input: RegisterPasskeyInput,
  client: ClientInfo,
): Promise<Passkey> {
  const { user, session } = auth;
  const { challenge } = await takeChallenge(svc, input.challengeId, "register", session.id);
  if (inCrossOriginFrame(input.response.response.clientDataJSON)) {
    throw passkeyFailed(CROSS_ORIGIN_FRAME);
  }
  const { rpId, origins } = svc.config.webauthn;
  let result: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
  try {
    const { verifyRegistrationResponse } = await webauthnLibrary();
    result = await verifyRegistrationResponse({
      response: input.response,
      expectedChallenge: challenge,
      expectedOrigin: origins,
      expectedRPID: rpId,
      expectedType: "webauthn.create",
      requireUserVerification: false,
      supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
    });
  } catch (err) {
    throw passkeyFailed(reasonOf(err));
  }
  if (!result.verified) throw passkeyFailed("The attestation is not valid");
  const info = result.registrationInfo;
  // The library keeps the ID attested in authData, whatever the response says. Only the
  // one the client reports (rawId, bounded by the route schema to 1023 bytes, §7.1) is
  // stored: any other, empty or longer, could never be named to rename or delete it.
  if (info.credential.id !== input.response.rawId) {
    throw passkeyFailed("The credential ID is not the one attested");
  }
  if (!(await hasUsableKey(info.credential.publicKey))) {
    throw passkeyFailed("The credential's public key is invalid");
  }
  const now = svc.clock.now();
  try {
    // Count and insert in one transaction with the user's row held: of concurrent
    // verifies (or ceremonies started before the cap was reached) only as many land
    // as there is room for. And only while the session that asks is live: a passkey
    // must not outlive a claim or reset that ended it during the ceremony.
    const passkey = await svc.store.transaction(async (tx) => {
      await holdLiveSession(svc, tx, user.id, session.id);
      const existing = await tx.webauthn.listForUser(user.id);
      if (existing.length >= MAX_PASSKEYS_PER_USER) throw atCap();
      return tx.webauthn.create(
        {
          id: info.credential.id,
          userId: user.id,
          name: input.name?.trim() || `Passkey ${new Date(now).toISOString().slice(0, 10)}`,
          publicKey: Buffer.from(info.credential.publicKey).toString("base64url"),
          counter: info.credential.counter,
          transports: info.credential.transports ?? input.response.response.transports ?? [],
          deviceType: info.credentialDeviceType,
          backedUp: info.credentialBackedUp,
        },
        now,
      );
    });
    audit(
      svc,
      {
        type: "passkey_registered",
        userId: user.id,
        sessionId: session.id,
        detail: { id: passkey.id },
      },
      client,
    );
    noticeSecurityChange(svc, user, `A passkey named "${passkey.name}" was added.`, client);
    return passkey;
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    throw new AuthError("conflict", "This passkey is already registered");
  }
}
