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
  reply.setCookie(ACCESS_COOKIE, tokens.accessToken, {
    ...base(config),
    sameSite: "lax",
    path: "/",
    maxAge: tokens.expiresIn,
  });
  reply.setCookie(REFRESH_COOKIE, tokens.refreshToken, {
    ...base(config),
    sameSite: "strict",
    path: REFRESH_PATH,
    maxAge: tokens.sessionExpiresIn,
  });
}

export function clearTokenCookies(reply: FastifyReply, config: Config): void {
  reply.clearCookie(ACCESS_COOKIE, { ...base(config), sameSite: "lax", path: "/" });
  reply.clearCookie(REFRESH_COOKIE, { ...base(config), sameSite: "strict", path: REFRESH_PATH });
}
