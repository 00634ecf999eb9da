import { AMR_VALUES, type LatchkeyClaims } from "./claims.js";
import { VerifyError } from "./errors.js";

export type AmrValue = (typeof AMR_VALUES)[number];

/**
 * What a route requires of a valid access token. Each field takes one value or a list,
 * any of which will do; every field given must hold.
 */
export interface ClaimsRequirement {
  /** The `role` claim, e.g. "admin" or ["admin", "support"]. */
  role?: string | readonly string[];
  /** A method in `amr`, e.g. ["otp", "hwk"]: signed in with a TOTP code or a passkey. */
  amr?: AmrValue | readonly AmrValue[];
}

/** Throws VerifyError `forbidden` (403) for claims that miss the requirement. */
export type ClaimsCheck = (claims: LatchkeyClaims) => void;

const FIELDS = new Set(["role", "amr"]);
const fail = (message: string): never => {
  throw new TypeError(`@latchkey/verify: ${message}`);
};

/**
 * The check is made once, where the route is declared: a misspelt field or `amr` value
 * is a TypeError there, since ignoring it would leave the route open to every valid token.
 */
export function createClaimsCheck(requirement: ClaimsRequirement = {}): ClaimsCheck {
  if (typeof requirement !== "object" || requirement === null) fail("a requirement is an object");
  for (const field of Object.keys(requirement)) {
    if (!FIELDS.has(field)) fail(`a requirement takes \`role\` and \`amr\`, not \`${field}\``);
  }
  const roles = accepted(requirement.role, "role");
  const methods = accepted(requirement.amr, "amr");
  for (const method of methods ?? []) {
    if (!(AMR_VALUES as readonly string[]).includes(method)) {
      fail(`\`amr\`: Latchkey never issues "${method}"; it issues ${AMR_VALUES.join(", ")}`);
    }
  }
  return (claims) => {
    if (roles && !roles.includes(claims.role)) {
      throw new VerifyError("forbidden", `This route requires the role ${roles.join(" or ")}`);
    }
    if (methods && !methods.some((method) => claims.amr.includes(method))) {
      throw new VerifyError(
        "forbidden",
        `This route requires a sign-in with ${methods.join(" or ")}`,
      );
    }
  };
}

function accepted(value: string | readonly string[] | undefined, name: string) {
  if (value === undefined) return undefined;
  const list: readonly unknown[] = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) fail(`\`${name}\` names at least one value`);
  for (const item of list) {
    if (typeof item !== "string" || item === "") fail(`\`${name}\` values are non-empty strings`);
  }
  return list as readonly string[];
}
