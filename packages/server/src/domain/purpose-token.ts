import { decodeProtectedHeader, errors, jwtVerify } from "jose";
import { signJwt } from "./jwt.js";
import type { JwtKey, Keyring } from "./keyring.js";

/**
 * Short-lived JWTs for one purpose each (MFA pending, step-up, OAuth link). Each has its own
 * `typ` claim and header media type (RFC 8725 §3.11), and its audience is this
 * server, so no purpose token passes as an access token or as another purpose.
 */
export type Purpose = "mfa" | "step_up" | "oauth_link";

/**
 * Seconds each purpose token lives: the MFA step gives a user time to find their
 * authenticator, step-up and OAuth link grants are for one action right after.
 */
export const PURPOSE_TTL_S: Readonly<Record<Purpose, number>> = {
  mfa: 600,
  step_up: 300,
  oauth_link: 300,
};

export interface PurposeClaims {
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  typ: Purpose;
  /** step_up, oauth_link: the session it is bound to. */
  sid?: string;
  /** Methods proven so far (RFC 8176). */
  amr: string[];
  /** mfa: carried over from the password step to the session it starts. */
  rememberMe?: boolean;
  /** mfa: the user's session epoch when the first factor passed (User.sessionEpoch). */
  epoch?: number;
}

export type PurposeSubject = Omit<PurposeClaims, "jti" | "iat" | "exp" | "typ">;

export interface PurposeSettings {
  /** The server's own URL: issuer and audience alike. */
  issuer: string;
  clockToleranceSeconds: number;
}

export type PurposeResult =
  | { ok: true; claims: PurposeClaims }
  | { ok: false; reason: "invalid" | "expired" };

const headerTyp = (purpose: Purpose) => `${purpose.replace("_", "-")}+jwt`;

export function signPurposeToken(
  purpose: Purpose,
  subject: PurposeSubject,
  keyring: Keyring,
  settings: PurposeSettings & { ttlSeconds: number },
  nowMs: number,
): string {
  return signJwt(
    { ...subject, typ: purpose },
    headerTyp(purpose),
    keyring,
    { issuer: settings.issuer, audience: settings.issuer, ttlSeconds: settings.ttlSeconds },
    nowMs,
  );
}

/** Same guard clauses as access tokens: key by `kid`, algorithm pinned to it (RFC 8725 §3.1). */
export async function verifyPurposeToken(
  purpose: Purpose,
  token: string,
  findKey: (kid: string) => Promise<JwtKey | undefined>,
  settings: PurposeSettings,
  nowMs: number,
): Promise<PurposeResult> {
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    return { ok: false, reason: "invalid" };
  }
  const key = typeof kid === "string" ? await findKey(kid) : undefined;
  if (!key) return { ok: false, reason: "invalid" };
  try {
    const { payload } = await jwtVerify(token, key.key, {
      algorithms: [key.alg],
      issuer: settings.issuer,
      audience: settings.issuer,
      typ: headerTyp(purpose),
      requiredClaims: ["sub", "jti", "iat", "exp"],
      clockTolerance: settings.clockToleranceSeconds,
      currentDate: new Date(nowMs),
    });
    if (payload.typ !== purpose || !Array.isArray(payload.amr))
      return { ok: false, reason: "invalid" };
    return { ok: true, claims: payload as unknown as PurposeClaims };
  } catch (err) {
    return { ok: false, reason: err instanceof errors.JWTExpired ? "expired" : "invalid" };
  }
}
