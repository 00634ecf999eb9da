import { Secret, TOTP } from "otpauth";

/** RFC 6238 defaults that every authenticator app understands: SHA-1, 6 digits, 30 s. */
export const TOTP_ALGORITHM = "SHA1";
export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_S = 30;
/** One step either side (RFC 6238 §5.2 allows a small window for clock drift and typing). */
export const TOTP_WINDOW = 1;
/** RFC 4226 §4 (R6): shared secrets of at least 128 bits, 160 recommended. */
const SECRET_BYTES = 20;
/** A used step stays claimed until no window can reach it any more. */
export const TOTP_REPLAY_TTL_MS = (2 * TOTP_WINDOW + 2) * TOTP_PERIOD_S * 1000;

export const TOTP_CODE = /^\d{6}$/;

/** A fresh shared secret, base32 (RFC 4648 §6) as authenticator apps expect it. */
export const newTotpSecret = (): string => new Secret({ size: SECRET_BYTES }).base32;

const totp = (secret: string, issuer = "", label = "") =>
  new TOTP({
    issuer,
    label,
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_S,
    secret: Secret.fromBase32(secret),
  });

/**
 * The issuer authenticator apps list this deployment under: the public URL's host name.
 * Key Uri Format forbids a colon in it (one separates issuer and account in the label, so
 * `localhost:8080:ada@…` read as account `8080:ada@…`): a port is left out, and an IPv6
 * literal gives way to the product name.
 */
export function totpIssuer(publicUrl: string, productName: string): string {
  const { hostname } = new URL(publicUrl);
  return (hostname.startsWith("[") ? productName : hostname).replaceAll(":", "");
}

/** The `otpauth://totp/...` key URI (Google Authenticator "Key Uri Format"). */
export const totpUri = (secret: string, issuer: string, label: string): string =>
  totp(secret, issuer, label).toString();

/**
 * The key URI as a PNG data URL, for an `<img>` the user scans. The encoder loads on
 * first use: it is needed only at MFA setup and would cost every node ~10 MB idle.
 */
export async function totpQrDataUrl(uri: string): Promise<string> {
  const { default: QRCode } = await import("qrcode");
  return QRCode.toDataURL(uri, { errorCorrectionLevel: "M" });
}

/**
 * The time step (RFC 6238 §4.2, T) a code belongs to at `nowMs`, or undefined when
 * it matches no step in the window. Callers claim the step so a code works once.
 */
export function totpStep(secret: string, code: string, nowMs: number): number | undefined {
  if (!TOTP_CODE.test(code)) return undefined;
  const delta = totp(secret).validate({ token: code, timestamp: nowMs, window: TOTP_WINDOW });
  if (delta === null) return undefined;
  return TOTP.counter({ period: TOTP_PERIOD_S, timestamp: nowMs }) + delta;
}
