export { ACCESS_TOKEN_TYP, AMR_VALUES, type LatchkeyClaims } from "./claims.js";
export { type Problem, problemFor, VerifyError, type VerifyErrorCode } from "./errors.js";
export type { VerifierOptions } from "./options.js";
export {
  type AmrValue,
  type ClaimsCheck,
  type ClaimsRequirement,
  createClaimsCheck,
} from "./requirement.js";
export { createVerifier, type Verifier } from "./verifier.js";
