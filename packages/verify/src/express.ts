import type { NextFunction, Request, Response } from "express";
import type { LatchkeyClaims } from "./claims.js";
import { problemFor, VerifyError } from "./errors.js";
import { type ClaimsRequirement, createClaimsCheck } from "./requirement.js";
import type { Verifier } from "./verifier.js";

declare global {
  namespace Express {
    interface Request {
      /** Set by the Latchkey middleware once the access token is verified. */
      latchkey?: LatchkeyClaims;
    }
  }
}

/**
 * `app.use(latchkeyExpress(verifier))`, or per route with what it requires:
 * `app.delete("/orders/:id", latchkeyExpress(verifier, { role: "admin" }), …)`.
 * Claims land on `req.latchkey`; 401 without a valid token, 403 when it misses the requirement.
 */
export function latchkeyExpress(verifier: Verifier, requirement?: ClaimsRequirement) {
  const check = createClaimsCheck(requirement);
  return (req: Request, res: Response, next: NextFunction): void => {
    verifier
      .authenticate(req.headers.authorization)
      .then((claims) => {
        check(claims);
        return claims;
      })
      .then(
        (claims) => {
          req.latchkey = claims;
          next();
        },
        (err: unknown) => {
          if (!(err instanceof VerifyError)) return next(err);
          const { status, headers, body } = problemFor(err);
          res.status(status).set(headers).send(JSON.stringify(body));
        },
      );
  };
}
