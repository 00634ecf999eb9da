import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { LatchkeyClaims } from "./claims.js";
import { problemFor, VerifyError } from "./errors.js";
import { type ClaimsRequirement, createClaimsCheck } from "./requirement.js";
import type { Verifier } from "./verifier.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the Latchkey pre-handler once the access token is verified. */
    latchkey?: LatchkeyClaims;
  }
}

/**
 * A preHandler for one route: `{ preHandler: latchkeyPreHandler(verifier) }`, or with what
 * the route requires: `latchkeyPreHandler(verifier, { role: "admin" })`. 401 without a
 * valid token, 403 when it misses the requirement.
 */
export function latchkeyPreHandler(verifier: Verifier, requirement?: ClaimsRequirement) {
  const check = createClaimsCheck(requirement);
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      const claims = await verifier.authenticate(request.headers.authorization);
      check(claims);
      request.latchkey = claims;
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      const { status, headers, body } = problemFor(err);
      await reply.code(status).headers(headers).send(body);
    }
  };
}

export interface LatchkeyPluginOptions {
  verifier: Verifier;
  /** What every route of the scope requires of the token, as for `latchkeyPreHandler`. */
  require?: ClaimsRequirement;
}

const plugin: FastifyPluginAsync<LatchkeyPluginOptions> = async (app, options) => {
  app.addHook("preHandler", latchkeyPreHandler(options.verifier, options.require));
};

/**
 * Every route of the scope it is registered in requires a valid access token:
 * `app.register(async (api) => { await api.register(latchkeyPlugin, { verifier }); api.get(…) })`,
 * and what `require` names (`{ verifier, require: { role: "admin" } }`).
 * Not encapsulated (what fastify-plugin does, without depending on it), so the hook
 * reaches the routes of the registering scope.
 */
export const latchkeyPlugin = Object.assign(plugin, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "@latchkey/verify",
});
