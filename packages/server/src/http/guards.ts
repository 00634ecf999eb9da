import type { FastifyReply, FastifyRequest } from "fastify";
import { AuthError } from "../domain/errors.js";
import { type Authenticated, authenticate, authenticateFromCache } from "../flows/authenticate.js";
import type { Services } from "../services.js";
import { accessCredential } from "./credentials.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `requireAuth` pre-handler. */
    auth: Authenticated | null;
  }
}

/**
 * Pre-handler for "acc" routes: a valid access token of a live session. Callback
 * style so that a fully cached request passes without a promise (bench/RESULTS.md).
 */
export function requireAuth(svc: Services) {
  return (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    let token: string;
    try {
      const credential = accessCredential(request, svc.config);
      if (!credential) throw new AuthError("unauthenticated", "An access token is required");
      token = credential.token;
      const cached = authenticateFromCache(svc, token);
      if (cached) {
        request.auth = cached;
        done();
        return;
      }
    } catch (err) {
      done(err as Error);
      return;
    }
    authenticate(svc, token).then((auth) => {
      request.auth = auth;
      done();
    }, done);
  };
}

/** Pre-handler for public endpoints: a general per-IP request budget. */
export function publicRateLimit(svc: Services) {
  return async (request: FastifyRequest): Promise<void> => {
    const wait = await svc.limits.publicPerIp.hit(request.ip);
    if (wait > 0) {
      throw new AuthError("rate_limited", "Too many requests; try again later", {
        retryAfterSeconds: wait,
      });
    }
  };
}

/** The authenticated context inside a handler behind `requireAuth`. */
export function authOf(request: FastifyRequest): Authenticated {
  if (!request.auth) throw new AuthError("unauthenticated", "An access token is required");
  return request.auth;
}
