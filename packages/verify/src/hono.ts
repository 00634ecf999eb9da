import type { MiddlewareHandler } from "hono";
import type { LatchkeyClaims } from "./claims.js";
import { problemFor, VerifyError } from "./errors.js";
import type { Verifier } from "./verifier.js";

/** Context variables the middleware sets: `c.get("latchkey")`. */
export type LatchkeyEnv = { Variables: { latchkey: LatchkeyClaims } };

/** `app.use("/api/*", latchkeyHono(verifier))`. */
export function latchkeyHono(verifier: Verifier): MiddlewareHandler<LatchkeyEnv> {
  return async (c, next) => {
    try {
      c.set("latchkey", await verifier.authenticate(c.req.header("authorization")));
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      const { headers, body } = problemFor(err);
      return c.body(JSON.stringify(body), err.status, headers);
    }
    await next();
  };
}
