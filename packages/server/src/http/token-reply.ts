import type { FastifyReply } from "fastify";
import type { Config } from "../config/load.js";
import type { User } from "../domain/user.js";
import type { IssuedTokens } from "../flows/issue-tokens.js";
import { setTokenCookies } from "./cookies.js";
import type { UserView } from "./schemas.js";

/** The contract's user object. */
export function userView(user: User, config: Config): UserView {
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerified,
    username: user.username,
    role: user.role,
    tier: user.tier,
    subscriptionStatus: user.subscriptionStatus,
    guest: user.guest,
    mfaEnabled: user.mfaEnabled,
    identities: [],
    allowedIps: user.allowedIps,
    sessionDurationMinutes: user.sessionDurationMinutes,
    singleSession: user.singleSession,
    screenLockMinutes: user.screenLockMinutes,
    limits: config.tiers[user.tier] ?? {},
    createdAt: new Date(user.createdAt).toISOString(),
  };
}

/** Delivers tokens as the configured mode says: cookies, body, or both. */
export function sendTokens(
  reply: FastifyReply,
  config: Config,
  tokens: IssuedTokens,
  status = 200,
): FastifyReply {
  const { delivery } = config.tokens;
  if (delivery !== "body") setTokenCookies(reply, config, tokens);
  const inBody = delivery !== "cookie";
  reply.header("cache-control", "no-store"); // RFC 6749 §5.1
  return reply.code(status).send({
    user: userView(tokens.user, config),
    ...(inBody ? { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken } : {}),
    expiresIn: tokens.expiresIn,
    sessionExpiresIn: tokens.sessionExpiresIn,
    tokenType: "Bearer",
  });
}
