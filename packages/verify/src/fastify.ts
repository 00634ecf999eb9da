import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { LatchkeyClaims } from "./claims.js";
import { problemFor, VerifyError } from "./errors.js";
import type { Verifier } from "./verifier.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Set by the Latchkey pre-handler once the access token is verified. */
    latchkey?: LatchkeyClaims;
  }
}

/** A preHandler for one route: `{ preHandler: latchkeyPreHandler(verifier) }`. */
export function latchkeyPreHandler(verifier: Verifier) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      request.latchkey = await verifier.authenticate(request.headers.authorization);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      const { status, headers, body } = problemFor(err);
      await reply.code(status).headers(headers).send(body);
    }
  };
}

const plugin: FastifyPluginAsync<{ verifier: Verifier }> = async (app, { verifier }) => {
  app.addHook("preHandler", latchkeyPreHandler(verifier));
};

/**
 * Every route of the scope it is registered in requires a valid access token:
 * `app.register(async (api) => { await api.register(latchkeyPlugin, { verifier }); api.get(…) })`.
 * Not encapsulated (what fastify-plugin does, without depending on it), so the hook
 * reaches the routes of the registering scope.
 */
export const latchkeyPlugin = Object.assign(plugin, {
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "@latchkey/verify",
});
