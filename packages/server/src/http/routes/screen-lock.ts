import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { lockSession } from "../../flows/lock.js";
import { lockedSessionOf, unlock } from "../../flows/unlock.js";
import type { Services } from "../../services.js";
import type { SessionContext } from "../../store/sessions.js";
import { clearTokenCookies, REFRESH_COOKIE } from "../cookies.js";
import {
  accessCredential,
  type Credential,
  clientInfo,
  refreshCredential,
  refusedCookie,
} from "../credentials.js";
import { authOf, requireAuth } from "../guards.js";
import { authSecurity, problemResponses, ReauthBody, TokenResponse } from "../schemas.js";
import { sendTokens } from "../token-reply.js";

export const screenLockRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (
  app,
  { svc },
) => {
  app.post(
    "/sessions/lock",
    {
      onRequest: requireAuth(svc),
      schema: {
        tags: ["sessions"],
        summary: "Lock this session now: 423 screen_locked until POST /auth/unlock",
        description:
          "A guest cannot lock (403 `forbidden`): it has no password, code or passkey to " +
          "unlock with. It may once upgraded (POST /auth/guest/upgrade). Neither can an " +
          "account with no password and no MFA (signed in through a provider only).",
        security: authSecurity,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 423) },
      },
    },
    async (request, reply) => {
      await lockSession(svc, authOf(request));
      return reply.code(204).send(null);
    },
  );

  // The session to unlock when the browser's lk_refresh cookie named it (lockedSessionOf).
  const byRefreshCookie = new WeakMap<FastifyRequest, SessionContext>();
  const byAccessToken = requireAuth(svc, { allowLocked: true });
  const unlockCredential = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: (err?: Error) => void,
  ): void => {
    let refresh: Credential | undefined;
    try {
      // Without an access token of ours (Bearer, lk_access; another Authorization scheme
      // carries none), the lk_refresh cookie names the session: CSRF-checked, as any cookie.
      refresh = accessCredential(request, svc.config)
        ? undefined
        : refreshCredential(request, svc.config, undefined);
    } catch (err) {
      done(err as Error);
      return;
    }
    if (!refresh) {
      byAccessToken(request, reply, done);
      return;
    }
    reply.header("cache-control", "no-store");
    const { token } = refresh;
    lockedSessionOf(svc, token, request.ip).then(
      (context) => {
        byRefreshCookie.set(request, context);
        done();
      },
      (err: Error) => {
        // As a refused /auth/refresh: the session behind the cookie is over, its cookies go.
        if (refusedCookie(err, request, REFRESH_COOKIE, token)) {
          clearTokenCookies(reply, svc.config);
        }
        done(err);
      },
    );
  };

  app.post(
    "/auth/unlock",
    {
      onRequest: unlockCredential,
      schema: {
        tags: ["auth"],
        summary: "Lift this session's screen lock with the password, a TOTP or a backup code",
        description:
          "Exactly one of `password` or `code` (a TOTP code, or a backup code, which is used " +
          "up). Access tokens issued before the unlock stay refused; the answer carries new tokens. " +
          "A session also locks by itself after `screenLockMinutes` without requests. The " +
          "session's access token is taken even after it expired, as long as it was valid at " +
          "the session's last use before the lock (refresh answers 423 while locked); a browser " +
          "whose lk_access cookie aged out with its token is known by its lk_refresh cookie " +
          "(the session's current one; CSRF-checked like any cookie). With such an outlived " +
          "credential an account with MFA unlocks with `code` only (401 `mfa_required` for a " +
          "password). A 401 for the lk_refresh cookie's token that refresh would also give " +
          "(a token rotated away, a session ended) clears lk_refresh, lk_access and lk_step_up, " +
          "as refresh does; one for a session that is not locked keeps them. Failures " +
          "count in the per-user limit shared with step-up and MFA codes.",
        security: authSecurity,
        body: ReauthBody,
        response: { 200: Type.Ref(TokenResponse), ...problemResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) =>
      sendTokens(
        reply,
        svc.config,
        await unlock(
          svc,
          byRefreshCookie.get(request) ?? authOf(request),
          request.body,
          clientInfo(request),
        ),
      ),
  );
};
