import type { CookieSerializeOptions } from "@fastify/cookie";
import type { FastifyReply } from "fastify";
import type { Config } from "../config/load.js";

export const ACCESS_COOKIE = "lk_access";
export const REFRESH_COOKIE = "lk_refresh";
/** Refresh cookies go only to /auth (refresh, logout): never to application routes. */
const REFRESH_PATH = "/auth";

function base(config: Config): CookieSerializeOptions {
  return {
    httpOnly: true,
    secure: config.cookies.secure,
    ...(config.cookies.domain ? { domain: config.cookies.domain } : {}),
  };
}

/** Only the access cookie: for responses that reissue the access token of a live session. */
export function setAccessCookie(
  reply: FastifyReply,
  config: Config,
  accessToken: string,
  expiresIn: number,
): void {
  reply.setCookie(ACCESS_COOKIE, accessToken, {
    ...base(config),
    sameSite: "lax",
    path: "/",
    maxAge: expiresIn,
  });
}

export function setTokenCookies(
  reply: FastifyReply,
  config: Config,
  tokens: {
    accessToken: string;
    refreshToken: string;
    expiresIn: number;
    sessionExpiresIn: number;
  },
): void {
  setAccessCookie(reply, config, tokens.accessToken, tokens.expiresIn);
  reply.setCookie(REFRESH_COOKIE, tokens.refreshToken, {
    ...base(config),
    sameSite: "strict",
    path: REFRESH_PATH,
    maxAge: tokens.sessionExpiresIn,
  });
}

export const MFA_COOKIE = "lk_mfa";
export const STEP_UP_COOKIE = "lk_step_up";

/**
 * The end of a session in this browser (logout, logout everywhere, revoking the current
 * session, deleting the account): the token cookies and the session's step-up grant go,
 * each with the Path and Domain it was set with, so the browser really deletes it.
 */
export function clearTokenCookies(reply: FastifyReply, config: Config): void {
  reply.clearCookie(ACCESS_COOKIE, { ...base(config), sameSite: "lax", path: "/" });
  reply.clearCookie(REFRESH_COOKIE, { ...base(config), sameSite: "strict", path: REFRESH_PATH });
  reply.clearCookie(STEP_UP_COOKIE, { ...base(config), sameSite: "lax", path: "/" });
}

/** MFA pending: only the /auth routes that finish a sign-in ever see it. */
export function setMfaCookie(reply: FastifyReply, config: Config, token: string, maxAge: number) {
  reply.setCookie(MFA_COOKIE, token, {
    ...base(config),
    sameSite: "lax",
    path: "/auth",
    maxAge,
  });
}

export function clearMfaCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(MFA_COOKIE, { ...base(config), sameSite: "lax", path: "/auth" });
}

/** Step-up goes to every route: the sensitive ones live under /auth, /mfa and /users. */
export function setStepUpCookie(
  reply: FastifyReply,
  config: Config,
  token: string,
  maxAge: number,
) {
  reply.setCookie(STEP_UP_COOKIE, token, {
    ...base(config),
    sameSite: "lax",
    path: "/",
    maxAge,
  });
}

export const OAUTH_COOKIE = "lk_oauth";
/** Only the OAuth routes see the start cookie; Lax, so the provider's redirect back carries it. */
const OAUTH_PATH = "/auth/oauth";

export function setOAuthCookie(
  reply: FastifyReply,
  config: Config,
  sealed: string,
  maxAge: number,
) {
  reply.setCookie(OAUTH_COOKIE, sealed, {
    ...base(config),
    sameSite: "lax",
    path: OAUTH_PATH,
    maxAge,
  });
}

export function clearOAuthCookie(reply: FastifyReply, config: Config): void {
  reply.clearCookie(OAUTH_COOKIE, { ...base(config), sameSite: "lax", path: OAUTH_PATH });
}
