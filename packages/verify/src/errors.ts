/** Stable codes; the first four mirror Latchkey's own problem codes. */
export type VerifyErrorCode =
  | "unauthenticated"
  | "invalid_token"
  | "token_expired"
  /** Introspection answered `active: false` (revoked, locked, disabled: it never says which). */
  | "token_inactive"
  /** The JWKS or the introspection endpoint could not be reached: refused, never waved through. */
  | "unavailable";

/** A refused token. Bad options are a programmer error and throw TypeError instead. */
export class VerifyError extends Error {
  override name = "VerifyError";
  /** The HTTP status an adapter answers with. */
  readonly status: 401 | 503;

  constructor(
    readonly code: VerifyErrorCode,
    message: string,
  ) {
    super(message);
    this.status = code === "unavailable" ? 503 : 401;
  }
}

export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: { type: string; title: string; status: number; detail: string; code: string };
}

/**
 * The answer adapters send: application/problem+json as Latchkey's own (the same `type`
 * URN, `no-store`), with the RFC 6750 §3 challenge. A request with no token gets a bare
 * challenge (§3.1).
 */
export function problemFor(err: VerifyError): Problem {
  const challenge =
    err.code === "unauthenticated"
      ? 'Bearer realm="latchkey"'
      : `Bearer realm="latchkey", error="invalid_token", error_description="${err.code}"`;
  return {
    status: err.status,
    headers: {
      "content-type": "application/problem+json",
      "cache-control": "no-store",
      ...(err.status === 401 ? { "www-authenticate": challenge } : {}),
    },
    body: {
      type: `urn:latchkey:error:${err.code}`,
      title: err.status === 401 ? "Unauthorized" : "Service Unavailable",
      status: err.status,
      detail: err.message,
      code: err.code,
    },
  };
}
