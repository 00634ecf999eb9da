/** Stable error codes from the HTTP contract, with the status each one answers. */
export const ERROR_STATUS = {
  validation_failed: 400,
  invalid_code: 400,
  webauthn_failed: 400,
  invalid_or_expired_token: 400,
  oauth_state_mismatch: 400,
  oauth_failed: 400,
  unauthenticated: 401,
  invalid_credentials: 401,
  token_expired: 401,
  invalid_token: 401,
  session_revoked: 401,
  refresh_token_reused: 401,
  user_not_found: 401,
  mfa_required: 401,
  forbidden: 403,
  ip_not_allowed: 403,
  step_up_required: 403,
  email_not_verified: 403,
  csrf_rejected: 403,
  account_disabled: 403,
  oauth_denied: 403,
  not_found: 404,
  conflict: 409,
  already_set_up: 409,
  email_in_use: 409,
  identity_in_use: 409,
  payload_too_large: 413,
  screen_locked: 423,
  rate_limited: 429,
  internal_error: 500,
  /**
   * Not in the contract's table, which lists no 503: a request that came as the server shut
   * down, or that got no database connection in time.
   */
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface FieldError {
  path: string;
  message: string;
}

/**
 * The one error type domain code throws. The HTTP layer turns it into
 * application/problem+json; `detail` is shown to the client, so it never holds
 * secrets or internals.
 */
export class AuthError extends Error {
  override name = "AuthError";
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extra: {
      errors?: FieldError[];
      retryAfterSeconds?: number;
      /**
       * The refusal may not last, so a cookie carrying what was presented is kept: a
       * concurrent request holds it and may give it back (a wrong MFA code), or it still
       * serves elsewhere (a refresh cookie at unlock while its session is not locked).
       */
      transient?: boolean;
    } = {},
  ) {
    super(detail);
    this.status = ERROR_STATUS[code];
  }
}

export const validationFailed = (path: string, message: string) =>
  new AuthError("validation_failed", message, { errors: [{ path, message }] });
