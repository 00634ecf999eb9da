import type { MiddlewareHandler } from "hono";
import type { LatchkeyClaims } from "./claims.js";
import { problemFor, VerifyError } from "./errors.js";
import { type ClaimsRequirement, createClaimsCheck } from "./requirement.js";
import type { Verifier } from "./verifier.js";

/** Context variables the middleware sets: `c.get("latchkey")`. */
export type LatchkeyEnv = { Variables: { latchkey: LatchkeyClaims } };

/**
 * `app.use("/api/*", latchkeyHono(verifier))`, or with what the routes require:
 * `app.use("/admin/*", latchkeyHono(verifier, { role: "admin" }))`. 401 without a valid
 * token, 403 when it misses the requirement.
 */
export function latchkeyHono(
  verifier: Verifier,
  requirement?: ClaimsRequirement,
): MiddlewareHandler<LatchkeyEnv> {
  const check = createClaimsCheck(requirement);
  return async (c, next) => {
    try {
      const claims = await verifier.authenticate(c.req.header("authorization"));
      check(claims);
      c.set("latchkey", claims);
    } catch (err) {
      if (!(err instanceof VerifyError)) throw err;
      const { headers, body } = problemFor(err);
      return c.body(JSON.stringify(body), err.status, headers);
    }
    await next();
  };
}
