import type { FastifyReply } from "fastify";
import type { Config } from "../config/load.js";
import type { User } from "../domain/user.js";
import type { IssuedTokens } from "../flows/issue-tokens.js";
import type { LoginResult } from "../flows/login.js";
import type { MfaPending } from "../flows/mfa-login.js";
import type { StepUpGrant } from "../flows/step-up.js";
import { setAccessCookie, setMfaCookie, setStepUpCookie, setTokenCookies } from "./cookies.js";
import type { UserView } from "./schemas.js";

/** The contract's user object. */
export function userView(user: User, config: Config): UserView {
  return {
    id: user.id,
    // A guest's address is shown as its email, never verified; mail never goes to it.
    email: user.email ?? user.guestEmail,
    emailVerified: user.emailVerified,
    username: user.username,
    role: user.role,
    tier: user.tier,
    subscriptionStatus: user.subscriptionStatus,
    guest: user.guest,
    mfaEnabled: user.mfaEnabled,
    identities: user.identities.map((i) => ({
      provider: i.provider,
      subject: i.subject,
      email: i.email,
      linkedAt: new Date(i.linkedAt).toISOString(),
    })),
    allowedIps: user.allowedIps,
    sessionDurationMinutes: user.sessionDurationMinutes,
    singleSession: user.singleSession,
    screenLockMinutes: user.screenLockMinutes,
    limits: config.tiers[user.tier] ?? {},
    createdAt: new Date(user.createdAt).toISOString(),
  };
}

/** Delivers tokens as the configured mode says: cookies, body, or both; `extra` joins the body. */
export function sendTokens(
  reply: FastifyReply,
  config: Config,
  tokens: IssuedTokens,
  status = 200,
  extra: Record<string, unknown> = {},
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
    ...extra,
  });
}

/** PATCH-style answers: the profile and a reissued access token, per the delivery mode. */
export function sendUserWithAccessToken(
  reply: FastifyReply,
  config: Config,
  user: User,
  access: { accessToken: string; expiresIn: number },
): FastifyReply {
  const { delivery } = config.tokens;
  if (delivery !== "body") setAccessCookie(reply, config, access.accessToken, access.expiresIn);
  reply.header("cache-control", "no-store");
  return reply.send({
    user: userView(user, config),
    ...(delivery !== "cookie" ? { accessToken: access.accessToken } : {}),
  });
}

/** Password right, second factor due: the MFA token per the delivery mode, no session yet. */
export function sendMfaRequired(
  reply: FastifyReply,
  config: Config,
  pending: MfaPending,
): FastifyReply {
  const { delivery } = config.tokens;
  if (delivery !== "body") setMfaCookie(reply, config, pending.mfaToken, pending.expiresIn);
  reply.header("cache-control", "no-store");
  return reply.send({
    mfaRequired: true,
    ...(delivery !== "cookie" ? { mfaToken: pending.mfaToken } : {}),
    expiresIn: pending.expiresIn,
  });
}

/** A first factor's outcome (password, magic link, passkey, exchange code): tokens or MFA pending. */
export function sendLoginResult(
  reply: FastifyReply,
  config: Config,
  result: LoginResult,
): FastifyReply {
  if (result.kind === "mfa_required") return sendMfaRequired(reply, config, result);
  return sendTokens(reply, config, result.tokens);
}

export function sendStepUp(reply: FastifyReply, config: Config, grant: StepUpGrant): FastifyReply {
  const { delivery } = config.tokens;
  if (delivery !== "body") setStepUpCookie(reply, config, grant.stepUpToken, grant.expiresIn);
  reply.header("cache-control", "no-store");
  return reply.send({
    ...(delivery !== "cookie" ? { stepUpToken: grant.stepUpToken } : {}),
    expiresIn: grant.expiresIn,
  });
}
