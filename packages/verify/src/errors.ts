/** Stable codes; all but `token_inactive` and `unavailable` are Latchkey's own problem codes. */
export type VerifyErrorCode =
  | "unauthenticated"
  | "invalid_token"
  | "token_expired"
  /** Introspection answered `active: false` (revoked, locked, disabled: it never says which). */
  | "token_inactive"
  /** A valid token whose claims miss what the route requires (role, sign-in method). */
  | "forbidden"
  /** The JWKS or the introspection endpoint could not be reached: refused, never waved through. */
  | "unavailable";

/** A refused token. Bad options are a programmer error and throw TypeError instead. */
export class VerifyError extends Error {
  override name = "VerifyError";
  /** The HTTP status an adapter answers with. */
  readonly status: 401 | 403 | 503;

  constructor(
    readonly code: VerifyErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code] ?? 401;
  }
}

const STATUS: Partial<Record<VerifyErrorCode, 403 | 503>> = { forbidden: 403, unavailable: 503 };
const TITLES = { 401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable" } as const;

export interface Problem {
  status: number;
  headers: Record<string, string>;
  body: { type: string; title: string; status: number; detail: string; code: string };
}

/**
 * The answer adapters send: application/problem+json as Latchkey's own (the same `type`
 * URN, `no-store`), with the RFC 6750 §3 challenge on a 401. A request with no token gets
 * a bare challenge (§3.1). A 403 has none, as Latchkey's own `forbidden` has none: the
 * token was valid, and a client must not take it for one to refresh.
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
      title: TITLES[err.status],
      status: err.status,
      detail: err.message,
      code: err.code,
    },
  };
}
