import {
  type Purpose,
  type PurposeClaims,
  type PurposeSubject,
  signPurposeToken,
  verifyPurposeToken,
} from "../domain/purpose-token.js";
import type { Services } from "../services.js";

const settings = (svc: Services) => ({
  issuer: svc.config.issuer,
  clockToleranceSeconds: svc.config.tokens.clockToleranceSeconds,
});

/** A purpose token signed with this node's current key. */
export const signPurpose = (
  svc: Services,
  purpose: Purpose,
  subject: PurposeSubject,
  ttlSeconds: number,
): string =>
  signPurposeToken(
    purpose,
    subject,
    svc.keys.keyring,
    { ...settings(svc), ttlSeconds },
    svc.clock.now(),
  );

/** Its claims when genuine, of this purpose and unexpired; why not otherwise. */
export const verifyPurpose = (svc: Services, purpose: Purpose, token: string) =>
  verifyPurposeToken(purpose, token, svc.keys.findKey, settings(svc), svc.clock.now());

/** Milliseconds until no verifier would accept the token any more (for replay-guard entries). */
export const msUntilUnusable = (svc: Services, claims: PurposeClaims): number =>
  (claims.exp + svc.config.tokens.clockToleranceSeconds) * 1000 - svc.clock.now();
