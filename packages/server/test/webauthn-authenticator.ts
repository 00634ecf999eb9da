import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";

/**
 * A software authenticator for tests: a real ES256 key pair per credential, a real
 * CBOR attestation object (format "none") with attested credential data and a COSE
 * key, real clientDataJSON, and assertion signatures over authData || SHA-256(clientDataJSON)
 * (WebAuthn §6.1, §6.5, §8.7). The browser's part (clientDataJSON, origin) is played
 * here too, so tests can also lie about the origin or the RP ID like a phishing page.
 */

export type Cbor = number | string | Uint8Array | Cbor[] | Map<Cbor, Cbor> | { [k: string]: Cbor };

/** RFC 8949 canonical-enough encoding of the few types WebAuthn needs. */
export function cbor(value: Cbor): Buffer {
  const head = (major: number, n: number): Buffer => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
    if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  if (typeof value === "number") return value >= 0 ? head(0, value) : head(1, -1 - value);
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cbor)]);
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return Buffer.concat([
    head(5, entries.length),
    ...entries.flatMap(([k, v]) => [cbor(k as Cbor), cbor(v as Cbor)]),
  ]);
}

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url");
const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

interface StoredCredential {
  id: Buffer;
  privateKey: KeyObject;
  publicKey: KeyObject;
  rpId: string;
  userHandle: string;
  counter: number;
}

export interface AuthenticatorOptions {
  /** The page the browser shows (clientDataJSON.origin). */
  origin: string;
  /** Whether a PIN or biometric check happens (UV flag). */
  userVerification?: boolean;
  /** Length of the credential IDs it makes (default 16 bytes; WebAuthn allows 1023). */
  credentialIdBytes?: number;
  /** A synced passkey: BE and BS flags set. */
  backedUp?: boolean;
  /** 0 for authenticators without a signature counter (most synced passkeys). */
  counterStep?: number;
}

/** What a ceremony may be made to lie about. */
export interface Tamper {
  origin?: string;
  rpId?: string;
  type?: string;
  challenge?: string;
  /** Run as in a frame of another site: clientDataJSON.crossOrigin and topOrigin. */
  crossOrigin?: boolean;
  topOrigin?: string;
  /** Sign with this counter value instead of the next one. */
  counter?: number;
  userVerification?: boolean;
  /** Which credential answers (default: the first allowed, else the first for the RP). */
  credentialId?: string;
  /** Attest this COSE key instead of the new credential's own (given to it): a broken one. */
  coseKey?: (own: Map<Cbor, Cbor>) => Map<unknown, unknown>;
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string };
  excludeCredentials?: Array<{ id: string }>;
}

interface RequestOptions {
  challenge: string;
  rpId?: string;
  allowCredentials?: Array<{ id: string }>;
}

export class SoftAuthenticator {
  readonly credentials: StoredCredential[] = [];
  private readonly uv: boolean;
  private readonly backedUp: boolean;
  private readonly counterStep: number;

  constructor(readonly options: AuthenticatorOptions) {
    this.uv = options.userVerification ?? true;
    this.backedUp = options.backedUp ?? false;
    this.counterStep = options.counterStep ?? 1;
  }

  private flags(tamper: Tamper): number {
    const uv = tamper.userVerification ?? this.uv;
    const backup = this.backedUp ? FLAG_BE | FLAG_BS : 0;
    return FLAG_UP | (uv ? FLAG_UV : 0) | backup;
  }

  private clientData(type: string, challenge: string, tamper: Tamper): Buffer {
    return Buffer.from(
      JSON.stringify({
        type: tamper.type ?? type,
        challenge: tamper.challenge ?? challenge,
        origin: tamper.origin ?? this.options.origin,
        crossOrigin: tamper.crossOrigin ?? false,
        ...(tamper.topOrigin ? { topOrigin: tamper.topOrigin } : {}),
      }),
    );
  }

  /** navigator.credentials.create(): a new ES256 credential, attestation "none". */
  register(options: CreationOptions, tamper: Tamper = {}) {
    const rpId = tamper.rpId ?? options.rp.id ?? new URL(this.options.origin).hostname;
    const excluded = new Set(options.excludeCredentials?.map((c) => c.id));
    if (this.credentials.some((c) => c.rpId === rpId && excluded.has(b64u(c.id)))) {
      throw new Error("InvalidStateError: a credential of this authenticator is excluded");
    }
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const credential: StoredCredential = {
      id: randomBytes(this.options.credentialIdBytes ?? 16),
      privateKey,
      publicKey,
      rpId,
      userHandle: options.user.id,
      counter: 0,
    };
    const jwk = publicKey.export({ format: "jwk" });
    // RFC 9053 §7.1.1: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
    const coseKey = new Map<Cbor, Cbor>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x as string, "base64url")],
      [-3, Buffer.from(jwk.y as string, "base64url")],
    ]);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([this.flags(tamper) | FLAG_AT]),
      this.counterBytes(credential, tamper),
      Buffer.alloc(16), // AAGUID: zero for "none" attestation
      idLength,
      credential.id,
      cbor((tamper.coseKey?.(coseKey) as Cbor | undefined) ?? coseKey),
    ]);
    const attestationObject = cbor({ fmt: "none", attStmt: {}, authData });
    const clientDataJSON = this.clientData("webauthn.create", options.challenge, tamper);
    this.credentials.push(credential);
    return {
      id: b64u(credential.id),
      rawId: b64u(credential.id),
      type: "public-key" as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        transports: ["internal", "hybrid"],
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }

  /** navigator.credentials.get(): an assertion by an allowed (or discoverable) credential. */
  assert(options: RequestOptions, tamper: Tamper = {}) {
    const rpId = tamper.rpId ?? options.rpId ?? new URL(this.options.origin).hostname;
    const allowed = new Set(options.allowCredentials?.map((c) => c.id));
    const credential = this.credentials.find((c) =>
      tamper.credentialId
        ? b64u(c.id) === tamper.credentialId
        : c.rpId === (options.rpId ?? rpId) && (allowed.size === 0 || allowed.has(b64u(c.id))),
    );
    if (!credential) throw new Error("NotAllowedError: no credential for this request");
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([this.flags(tamper)]),
      this.counterBytes(credential, tamper),
    ]);
    const clientDataJSON = this.clientData("webauthn.get", options.challenge, tamper);
    const signature = sign("sha256", Buffer.concat([authData, sha256(clientDataJSON)]), {
      key: credential.privateKey,
      dsaEncoding: "der",
    });
    return {
      id: b64u(credential.id),
      rawId: b64u(credential.id),
      type: "public-key" as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        // Discoverable credentials return the user handle they were created with.
        userHandle: credential.userHandle,
      },
      clientExtensionResults: {},
      authenticatorAttachment: "platform",
    };
  }

  private counterBytes(credential: StoredCredential, tamper: Tamper): Buffer {
    if (tamper.counter === undefined) credential.counter += this.counterStep;
    const value = tamper.counter ?? credential.counter;
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(value);
    return bytes;
  }
}
