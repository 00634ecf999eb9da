import type { FastifyReply, FastifyRequest } from "fastify";
import { isApiToken, type Scope } from "../domain/api-token.js";
import { AuthError } from "../domain/errors.js";
import { type Authenticated, authenticate, authenticateFromCache } from "../flows/authenticate.js";
import {
  type ApiTokenAuth,
  apiTokenAuthFromCache,
  authenticateApiToken,
} from "../flows/authenticate-api-token.js";
import { hasSteppedUp } from "../flows/step-up.js";
import type { Services } from "../services.js";
import { accessCredential, stepUpCredential } from "./credentials.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the `requireAuth` hook; an `ApiTokenAuth` only on routes with a scope. */
    auth: Authenticated | ApiTokenAuth | null;
  }
}

export interface AuthOptions {
  /** Accept a screen-locked session (only POST /auth/unlock does). */
  allowLocked?: boolean;
  /**
   * Also accept an API token (`Bearer lk_…`) whose scopes grant this one (scopesGrant:
   * the scope itself, its resource, its action or `*`). Without it the route refuses API
   * tokens: token management, MFA, step-up and logout never name one.
   */
  scope?: Scope;
}

/**
 * `onRequest` hook for the routes that take a credential other than an access token (a
 * refresh, MFA or exchange token): their answers, refusals included, are no-store like
 * those of `requireAuth`, set before anything can refuse the request.
 */
export function noStore(_request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  reply.header("cache-control", "no-store");
  done();
}

/**
 * Marks the `requireAuth` hooks that answer a screen-locked session 423 (all but unlock's),
 * so that app.ts documents that answer on every route behind one.
 */
export const refusesLockedSessions = Symbol("refusesLockedSessions");

/** Whether a route's `onRequest` hooks refuse a screen-locked session (423). */
export function refusesLocked(onRequest: unknown): boolean {
  return [onRequest ?? []].flat().some((hook) => refusesLockedSessions in (hook as object));
}

/**
 * `onRequest` hook for "acc" routes: a valid access token of a live session. It runs
 * before the body is parsed or validated, so a caller without credentials learns 401 (or
 * 403 `csrf_rejected`) and nothing about what the body should have been. Callback
 * style so that a fully cached request passes without a promise (bench/RESULTS.md).
 */
export function requireAuth(svc: Services, options: AuthOptions = {}) {
  const hook = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: (err?: Error) => void,
  ): void => {
    // What an authenticated route answers is the caller's own (profile, sessions, API
    // tokens, admin lists): no browser or proxy cache may keep it (ASVS 8.2.1). Set
    // before authenticating, so its 401s and 403s are not stored either.
    reply.header("cache-control", "no-store");
    let token: string;
    const check = { ip: request.ip, allowLocked: options.allowLocked };
    try {
      const credential = accessCredential(request, svc.config);
      if (!credential) throw new AuthError("unauthenticated", "An access token is required");
      token = credential.token;
      if (credential.via === "bearer" && isApiToken(token)) {
        acceptApiToken(svc, request, token, options.scope, done);
        return;
      }
      const cached = authenticateFromCache(svc, token, check);
      if (cached) {
        request.auth = cached;
        done();
        return;
      }
    } catch (err) {
      done(err as Error);
      return;
    }
    authenticate(svc, token, check).then((auth) => {
      request.auth = auth;
      done();
    }, done);
  };
  return options.allowLocked ? hook : Object.assign(hook, { [refusesLockedSessions]: true });
}

/** DESIGN.md step 2: an API token, on a route that names a scope, within that scope. */
function acceptApiToken(
  svc: Services,
  request: FastifyRequest,
  token: string,
  scope: Scope | undefined,
  done: (err?: Error) => void,
): void {
  let cached: ApiTokenAuth | undefined;
  try {
    if (!scope) throw new AuthError("forbidden", "This route does not accept API tokens");
    cached = apiTokenAuthFromCache(svc, token, scope, request.ip);
  } catch (err) {
    done(err as Error);
    return;
  }
  if (cached) {
    request.auth = cached;
    done();
    return;
  }
  authenticateApiToken(svc, token, scope, request.ip).then((auth) => {
    request.auth = auth;
    done();
  }, done);
}

/**
 * Pre-handler for public endpoints: a general per-IP request budget. A pre-handler, not
 * an `onRequest` hook: the body is then read as soon as the request arrives, so a login
 * whose client hangs up right after sending it still completes (see the shutdown test).
 */
export function publicRateLimit(svc: Services) {
  return async (request: FastifyRequest): Promise<void> => {
    const wait = await svc.limits.publicPerIp.hit(request.ip);
    if (wait > 0) {
      svc.metrics.rateLimited.inc({ limit: "public" });
      throw new AuthError("rate_limited", "Too many requests; try again later", {
        retryAfterSeconds: wait,
      });
    }
  };
}

/**
 * The session context inside a handler behind `requireAuth`. Refuses an API token,
 * so a handler that never considered one cannot act on it by mistake.
 */
export function authOf(request: FastifyRequest): Authenticated {
  const auth = callerOf(request);
  if ("apiToken" in auth) throw new AuthError("forbidden", "This route does not accept API tokens");
  return auth;
}

/** Whoever called a route with a `scope`: a session, or an API token (which has `apiToken`). */
export function callerOf(request: FastifyRequest): Authenticated | ApiTokenAuth {
  if (!request.auth) throw new AuthError("unauthenticated", "An access token is required");
  return request.auth;
}

/**
 * `onRequest` hook for "acc + su" routes, after `requireAuth`: a step-up token
 * (`X-Step-Up-Token` or the lk_step_up cookie) of this very session and user.
 */
export function requireStepUp(svc: Services) {
  return async (request: FastifyRequest): Promise<void> => {
    if (!(await hasSteppedUp(svc, authOf(request), stepUpCredential(request)))) {
      throw new AuthError(
        "step_up_required",
        "Confirm it is you first: POST /auth/step-up, then send X-Step-Up-Token",
      );
    }
  };
}

/**
 * `onRequest` hook for admin routes, after `requireAuth`: the caller's role as stored now
 * (every node forgets its cached copy when an admin changes it), not the token's claim,
 * so a demoted admin loses access at once.
 */
export function requireAdmin() {
  return async (request: FastifyRequest): Promise<void> => {
    if (authOf(request).user.role !== "admin") {
      throw new AuthError("forbidden", "This route is for admins");
    }
  };
}
