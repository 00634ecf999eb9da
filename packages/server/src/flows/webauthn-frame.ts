/**
 * WebAuthn §7.1 and §7.2 ("If C.topOrigin is present, verify that the Relying Party
 * expects this credential to be used within an iframe that is not same-origin with its
 * ancestors"): Latchkey expects no such frame (its pages send frame-ancestors 'none' and
 * no top origin is configured). The library checks topOrigin at sign-in only, not at
 * registration; and Safari marks such a frame with crossOrigin alone, without topOrigin.
 */
export function inCrossOriginFrame(clientDataJSON: string): boolean {
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(clientDataJSON, "base64url").toString("utf8"));
  } catch {
    return false; // Not JSON: the library refuses it as malformed.
  }
  if (typeof data !== "object" || data === null) return false;
  const { crossOrigin, topOrigin } = data as { crossOrigin?: unknown; topOrigin?: unknown };
  return crossOrigin === true || topOrigin !== undefined;
}

export const CROSS_ORIGIN_FRAME = "The ceremony ran in a cross-origin frame";
