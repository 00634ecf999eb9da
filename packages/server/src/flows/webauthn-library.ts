/**
 * @simplewebauthn/server pulls in an X.509 and ASN.1 stack (~100 ms to load): only
 * servers that see a passkey ceremony pay for it, on the first one.
 */
export const webauthnLibrary = () => import("@simplewebauthn/server");

/** Its CBOR and COSE helpers, loaded the same way (they share that stack). */
export const webauthnHelpers = () => import("@simplewebauthn/server/helpers");
