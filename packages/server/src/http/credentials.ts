import type { FastifyRequest } from "fastify";
import type { Config } from "../config/load.js";
import { AuthError } from "../domain/errors.js";
import type { ClientInfo } from "../services.js";
import { ACCESS_COOKIE, MFA_COOKIE, REFRESH_COOKIE, STEP_UP_COOKIE } from "./cookies.js";

export interface Credential {
  token: string;
  via: "bearer" | "cookie" | "body";
}

const BEARER = /^Bearer +([\x21-\x7e]+)$/i;
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** `Authorization: Bearer …` first, then the lk_access cookie (DESIGN.md hot path, step 1). */
export const accessCredential = (request: FastifyRequest, config: Config) =>
  bearerCredential(request) ?? cookieCredential(request, config, ACCESS_COOKIE);

/** `<session uuid>.<generation>.` — how a refresh token starts (domain/refresh-token.ts). */
const REFRESH_SHAPE = /^[0-9a-f-]{36}\.\d+\./;

/**
 * A refresh token from the JSON body, else Bearer, else the lk_refresh cookie. A
 * Bearer value not shaped like a refresh token (an SDK that sends its access token
 * on every call) gives way to the cookie rather than failing the refresh or logout.
 */
export function refreshCredential(
  request: FastifyRequest,
  config: Config,
  body: { refreshToken?: string } | undefined,
): Credential | undefined {
  if (body?.refreshToken) return { token: body.refreshToken, via: "body" };
  const bearer = bearerCredential(request);
  if (bearer && REFRESH_SHAPE.test(bearer.token)) return bearer;
  return cookieCredential(request, config, REFRESH_COOKIE) ?? bearer;
}

const BEARER_SCHEME = /^bearer(?: |$)/i;

function bearerCredential(request: FastifyRequest): Credential | undefined {
  const header = request.headers.authorization;
  // Another scheme (Basic, say) carries no credential of ours: the request "lacks any
  // authentication information" (RFC 6750 §3.1), so a cookie may still serve, else 401
  // unauthenticated. Only a malformed Bearer value is an invalid token.
  if (header === undefined || !BEARER_SCHEME.test(header)) return undefined;
  const match = BEARER.exec(header);
  if (!match) throw new AuthError("invalid_token", "Authorization must be `Bearer <token>`");
  return { token: match[1] as string, via: "bearer" };
}

function cookieCredential(
  request: FastifyRequest,
  config: Config,
  cookie: string,
): Credential | undefined {
  const value = request.cookies[cookie];
  if (!value) return undefined;
  assertAllowedOrigin(request, config);
  return { token: value, via: "cookie" };
}

/**
 * CSRF defence for cookie-authenticated state changes (OWASP CSRF cheat sheet,
 * "Verifying Origin with standard headers"): Origin, else Referer, must be allowed.
 */
export function assertAllowedOrigin(request: FastifyRequest, config: Config): void {
  if (SAFE_METHODS.has(request.method)) return;
  const origin = request.headers.origin ?? refererOrigin(request.headers.referer);
  if (origin && config.allowedOrigins.includes(origin)) return;
  throw new AuthError(
    "csrf_rejected",
    origin
      ? `Origin ${origin} is not allowed for cookie-authenticated requests`
      : "A cookie-authenticated request must carry an allowed Origin or Referer",
  );
}

function refererOrigin(referer: string | undefined): string | undefined {
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}

export const clientInfo = (request: FastifyRequest): ClientInfo => ({
  ip: request.ip,
  userAgent: request.headers["user-agent"]?.slice(0, 512) ?? null,
});

/** The MFA-pending token: header `X-MFA-Token` first, then the lk_mfa cookie (CSRF-checked). */
export function mfaCredential(request: FastifyRequest, config: Config): string | undefined {
  const header = request.headers["x-mfa-token"];
  if (typeof header === "string" && header) return header;
  const value = request.cookies[MFA_COOKIE];
  if (!value) return undefined;
  assertAllowedOrigin(request, config);
  return value;
}

/**
 * Whether `err` refuses `token` for good and the browser's `cookie` holds it. A 401 on a
 * presented token (forged, used, expired, of an ended session) never turns into a yes
 * later, so the answer should delete such a cookie instead of leaving it to be sent, and
 * refused, again. A wrong code, a lock or a rate limit (4xx but not 401) keeps it for the retry,
 * and so does a token a concurrent request holds (it may give it back: `transient`).
 */
export function refusedCookie(
  err: unknown,
  request: FastifyRequest,
  cookie: string,
  token: string,
): boolean {
  return (
    err instanceof AuthError &&
    err.status === 401 &&
    !err.extra.transient &&
    request.cookies[cookie] === token
  );
}

/** The step-up token: header `X-Step-Up-Token` first, then the lk_step_up cookie. */
export function stepUpCredential(request: FastifyRequest): string | undefined {
  const header = request.headers["x-step-up-token"];
  if (typeof header === "string" && header) return header;
  return request.cookies[STEP_UP_COOKIE] || undefined;
}
