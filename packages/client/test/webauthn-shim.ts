import { vi } from "vitest";
import type { SoftAuthenticator } from "../../server/test/webauthn-authenticator.js";

const b64u = (data: BufferSource) =>
  (ArrayBuffer.isView(data)
    ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    : Buffer.from(data)
  ).toString("base64url");
const bytes = (text: string) => new Uint8Array(Buffer.from(text, "base64url")).buffer;

/**
 * Node has no `navigator.credentials`: this plays the browser's part over a software
 * authenticator, so @simplewebauthn/browser (and the client's passkey methods) run as in
 * a browser. The authenticator signs real ceremonies that the real server verifies; undo
 * with `vi.unstubAllGlobals()`.
 */
export function installWebAuthn(authenticator: SoftAuthenticator): void {
  vi.stubGlobal("PublicKeyCredential", class PublicKeyCredential {});
  vi.stubGlobal("navigator", {
    credentials: {
      async create({ publicKey }: { publicKey: PublicKeyCredentialCreationOptions }) {
        const made = authenticator.register({
          challenge: b64u(publicKey.challenge),
          rp: publicKey.rp,
          user: { id: b64u(publicKey.user.id), name: publicKey.user.name },
          excludeCredentials: publicKey.excludeCredentials?.map((c) => ({ id: b64u(c.id) })),
        });
        return {
          id: made.id,
          rawId: bytes(made.rawId),
          type: made.type,
          response: {
            attestationObject: bytes(made.response.attestationObject),
            clientDataJSON: bytes(made.response.clientDataJSON),
            getTransports: () => made.response.transports,
          },
          getClientExtensionResults: () => ({}),
          authenticatorAttachment: made.authenticatorAttachment,
        };
      },
      async get({ publicKey }: { publicKey: PublicKeyCredentialRequestOptions }) {
        const signed = authenticator.assert({
          challenge: b64u(publicKey.challenge),
          ...(publicKey.rpId ? { rpId: publicKey.rpId } : {}),
          allowCredentials: publicKey.allowCredentials?.map((c) => ({ id: b64u(c.id) })),
        });
        return {
          id: signed.id,
          rawId: bytes(signed.rawId),
          type: signed.type,
          response: {
            authenticatorData: bytes(signed.response.authenticatorData),
            clientDataJSON: bytes(signed.response.clientDataJSON),
            signature: bytes(signed.response.signature),
            userHandle: bytes(signed.response.userHandle),
          },
          getClientExtensionResults: () => ({}),
          authenticatorAttachment: signed.authenticatorAttachment,
        };
      },
    },
  });
}
