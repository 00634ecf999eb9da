import type {
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
} from "@simplewebauthn/browser";

/** The contract's user object (API.md, "Shapes"). Times are ISO 8601 strings. */
export interface User {
  id: string;
  email: string | null;
  emailVerified: boolean;
  username: string | null;
  role: string;
  tier: string;
  subscriptionStatus: string;
  guest: boolean;
  mfaEnabled: boolean;
  identities: Array<{ provider: string; subject: string; email: string | null; linkedAt: string }>;
  allowedIps: string[];
  sessionDurationMinutes: number | null;
  singleSession: boolean;
  screenLockMinutes: number | null;
  limits: Record<string, number>;
  createdAt: string;
}

/** A response that issues tokens; the token fields are absent in cookie-only delivery. */
export interface TokenResponse {
  user: User;
  accessToken?: string;
  refreshToken?: string;
  expiresIn: number;
  sessionExpiresIn: number;
  tokenType: "Bearer";
  returningGuest?: boolean;
}

export interface MfaPendingResponse {
  mfaRequired: true;
  mfaToken?: string;
  expiresIn: number;
}

/** What a sign-in step ends in: a session, or a second factor still due. */
export type SignInResult =
  | { status: "signed_in"; user: User; returningGuest?: boolean }
  | { status: "mfa_required"; expiresIn: number };

/** POST /auth/register: signed in (201), or the email must be verified first (202). */
export type RegisterResult =
  | { status: "signed_in"; user: User }
  | { status: "verification_required" };

export interface Session {
  id: string;
  ip: string | null;
  userAgent: string | null;
  browser: string | null;
  os: string | null;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  current: boolean;
}

/** A route's scope, a resource for all its actions, an action on every resource, or `*` (README "API tokens"). */
export type ApiTokenScope =
  | "profile:read"
  | "sessions:read"
  | "sessions:write"
  | "introspect"
  | "profile"
  | "sessions"
  | "read"
  | "write"
  | "*";

export interface ApiToken {
  id: string;
  name: string;
  prefix: string;
  scopes: ApiTokenScope[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

export interface TotpSetup {
  secret: string;
  otpauthUrl: string;
  qrCodeDataUrl: string;
}

/** A registered passkey (GET /webauthn/credentials). */
export interface Passkey {
  /** The credential ID, base64url. */
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  /** The authenticator reports the key backed up (synced). */
  backedUp: boolean;
  /** `multiDevice`: a synced passkey; `singleDevice`: bound to one authenticator. */
  deviceType: "singleDevice" | "multiDevice";
}

/** What every passkey options route answers: options for the browser, and the challenge's id. */
export interface PasskeyCeremony<
  T extends PublicKeyCredentialCreationOptionsJSON | PublicKeyCredentialRequestOptionsJSON,
> {
  options: T;
  challengeId: string;
}

export interface ProfilePatch {
  username?: string;
  email?: string;
  allowedIps?: string[];
  sessionDurationMinutes?: number | null;
  singleSession?: boolean;
  screenLockMinutes?: number | null;
}

/** `application/problem+json` (RFC 9457) with the contract's stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: Array<{ path: string; message: string }>;
}
