export { ACCESS_TOKEN_TYP, type LatchkeyClaims } from "./claims.js";
export { type Problem, problemFor, VerifyError, type VerifyErrorCode } from "./errors.js";
export type { VerifierOptions } from "./options.js";
export { createVerifier, type Verifier } from "./verifier.js";
