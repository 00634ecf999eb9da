import {
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  startAuthentication,
  startRegistration,
} from "@simplewebauthn/browser";
import { LatchkeyError, problemResponse } from "./errors.js";
import { RefreshCoordinator } from "./refresh-coordinator.js";
import { refreshFailure } from "./refresh-failure.js";
import { LatchkeySocket, type SocketOptions } from "./socket.js";
import { memoryStorage, type StoredTokens, type TokenStorage } from "./storage.js";
import type {
  ApiToken,
  ApiTokenScope,
  MfaPendingResponse,
  Passkey,
  PasskeyCeremony,
  ProfilePatch,
  RegisterResult,
  Session,
  SignInResult,
  TokenResponse,
  TotpSetup,
  User,
} from "./types.js";

/**
 * `cookie`: the browser holds the tokens as HttpOnly cookies and sends them
 * (`credentials: "include"`); the server must deliver cookies (tokens.delivery both or
 * cookie) and list the page's origin in allowedOrigins. `body`: tokens live in memory and
 * a storage adapter, and go out as `Authorization: Bearer`.
 */
export type Mode = "cookie" | "body";

export interface ClientOptions {
  mode: Mode;
  /** Latchkey's base URL; default: the page's origin. */
  baseUrl?: string;
  /** Body mode only. Default: memory. */
  storage?: TokenStorage;
  fetch?: typeof fetch;
  /**
   * Other origins whose APIs take Latchkey access tokens; `fetch` authenticates to them too.
   * A URL counts as its origin ("https://api.example.com/" is https://api.example.com).
   */
  apiOrigins?: string[];
  /** Names the BroadcastChannel and Web Lock that tabs share; one per deployment. */
  channelName?: string;
  /** The session ended without the user asking (refresh refused, revoked): show the login. */
  onSessionEnd?(reason: string): void;
}

/** Codes a refresh can cure: the access token expired, went missing (cookie aged out) or rotated. */
const REFRESHABLE = new Set(["token_expired", "invalid_token", "unauthenticated"]);
/** Codes Latchkey answers when the session itself is over: no refresh can cure them. */
const SESSION_OVER = new Set(["session_revoked", "user_not_found"]);
/** A socket does not start with an access token this close to its end. */
const SOCKET_TOKEN_MARGIN_MS = 10_000;
const JSON_HEADERS = { "content-type": "application/json" };

/** A typed client for Latchkey's HTTP API, for browsers and Node 20+ (global fetch). */
export class LatchkeyClient {
  readonly mode: Mode;
  readonly baseUrl: string;
  #fetch: typeof fetch;
  #storage: TokenStorage;
  #coordinator: RefreshCoordinator;
  #origins: Set<string>;
  #onSessionEnd: ((reason: string) => void) | undefined;
  #tokens: StoredTokens | null | undefined; // undefined: not loaded from storage yet
  #mfaToken: string | undefined;
  #stepUp: { token: string; expiresAt: number } | undefined;
  /** `onSessionEnd` was called for the session in hand; a sign-in or a refresh clears it. */
  #endReported = false;
  /** Counts sign-ins and sign-outs: a refresh that outlived one answers for a session gone. */
  #epoch = 0;

  constructor(options: ClientOptions) {
    if (options.mode !== "cookie" && options.mode !== "body") {
      throw new TypeError('latchkey: options.mode must be "cookie" or "body"');
    }
    const base = options.baseUrl ?? (globalThis as { location?: Location }).location?.origin;
    if (!base) throw new TypeError("latchkey: options.baseUrl is required outside a browser");
    this.mode = options.mode;
    this.baseUrl = base.replace(/\/+$/, "");
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#storage = options.storage ?? memoryStorage();
    // As origins, so "https://api.example.com/" matches what `fetch` compares: the URL's origin.
    const apiOrigins = (options.apiOrigins ?? []).map((o) => {
      if (!URL.canParse(o)) throw new TypeError(`latchkey: apiOrigins: ${o} is not a URL`);
      return new URL(o).origin;
    });
    this.#origins = new Set([new URL(this.baseUrl).origin, ...apiOrigins]);
    this.#onSessionEnd = options.onSessionEnd;
    // Tabs share a session when the browser shares the cookies, or the storage is shared.
    const crossTab = this.mode === "cookie" || this.#storage.shared === true;
    this.#coordinator = new RefreshCoordinator(options.channelName ?? "latchkey", crossTab);
  }

  // Sign-in steps ----------------------------------------------------------------

  async login(body: {
    identifier: string;
    password: string;
    rememberMe?: boolean;
  }): Promise<SignInResult> {
    return this.#signIn(await this.#signInRequest("/auth/login", body));
  }

  /** Finishes an MFA sign-in with a TOTP or backup code. */
  async loginMfa(code: string): Promise<SignInResult> {
    return this.#signIn(await this.#signInRequest("/auth/login/mfa", { code }, this.#mfaHeaders()));
  }

  /**
   * Signs in with a passkey (browsers only: it asks the authenticator). Without an
   * `identifier` the browser offers the passkeys it holds for this site (discoverable).
   * May answer `mfa_required` when the authenticator did not verify the user.
   */
  async loginWithPasskey(
    body: { identifier?: string; rememberMe?: boolean } = {},
  ): Promise<SignInResult> {
    const { identifier, rememberMe } = body;
    const { options, challengeId } = await this.#publicJson<
      PasskeyCeremony<PublicKeyCredentialRequestOptionsJSON>
    >("/auth/webauthn/options", identifier ? { identifier } : {});
    const response = await startAuthentication({ optionsJSON: options });
    return this.#signIn(
      await this.#signInRequest("/auth/webauthn/verify", {
        challengeId,
        response,
        ...(rememberMe === undefined ? {} : { rememberMe }),
      }),
    );
  }

  /** Finishes an MFA sign-in with one of the user's passkeys instead of a code (browsers only). */
  async loginMfaPasskey(): Promise<SignInResult> {
    const headers = this.#mfaHeaders();
    const { options, challengeId } = await this.#publicJson<
      PasskeyCeremony<PublicKeyCredentialRequestOptionsJSON>
    >("/auth/login/mfa/webauthn/options", undefined, headers);
    const response = await startAuthentication({ optionsJSON: options });
    return this.#signIn(
      await this.#signInRequest(
        "/auth/login/mfa",
        { webauthn: { challengeId, response } },
        headers,
      ),
    );
  }

  async register(body: {
    email: string;
    password: string;
    username?: string;
  }): Promise<RegisterResult> {
    const res = await this.#signInRequest("/auth/register", body);
    if (res.status === 202) return { status: "verification_required" };
    const result = await this.#signIn(res);
    if (result.status !== "signed_in") throw new TypeError("latchkey: unexpected MFA on register");
    return result;
  }

  async guest(body: { username: string; email?: string }): Promise<SignInResult> {
    return this.#signIn(await this.#signInRequest("/auth/guest", body));
  }

  async verifyMagicLink(token: string): Promise<SignInResult> {
    return this.#signIn(await this.#signInRequest("/auth/magic-link/verify", { token }));
  }

  requestMagicLink(email: string): Promise<void> {
    return this.#publicVoid("/auth/magic-link", { email });
  }

  forgotPassword(email: string): Promise<void> {
    return this.#publicVoid("/auth/password/forgot", { email });
  }

  resetPassword(token: string, newPassword: string): Promise<void> {
    return this.#publicVoid("/auth/password/reset", { token, newPassword });
  }

  verifyEmail(token: string): Promise<void> {
    return this.#publicVoid("/auth/email/verify", { token });
  }

  resendVerification(email: string): Promise<void> {
    return this.#publicVoid("/auth/email/resend", { email });
  }

  /**
   * Rotates the refresh token now. Concurrent calls, and 401s from `fetch`, share one
   * refresh. Resolves false when the session is over.
   */
  refresh(): Promise<boolean> {
    return this.#coordinator.run(this.#coordinator.version, () => this.#rotate());
  }

  /** Ends this session on the server (when it can) and forgets it here in any case. */
  async logout(): Promise<void> {
    const tokens = this.mode === "body" ? await this.#load() : null;
    try {
      const body = tokens ? { refreshToken: tokens.refreshToken } : undefined;
      const res = await this.#public("/auth/logout", body);
      // 401: the session had already ended, which is what was asked for.
      if (!res.ok && res.status !== 401) throw await LatchkeyError.from(res);
    } finally {
      await this.#signedOut();
    }
  }

  async logoutAll(): Promise<void> {
    await this.request("POST", "/auth/logout/all");
    await this.#signedOut();
  }

  // Account ------------------------------------------------------------------------

  me(): Promise<User> {
    return this.request<User>("GET", "/users/me");
  }

  async updateProfile(patch: ProfilePatch): Promise<User> {
    const res = await this.request<{ user: User; accessToken?: string }>(
      "PATCH",
      "/users/me",
      patch,
    );
    if (res.accessToken) await this.#accept({ accessToken: res.accessToken });
    return res.user;
  }

  /** Proves the password or a TOTP code again; sensitive routes then pass for 5 minutes. */
  stepUp(proof: { password: string } | { code: string }): Promise<void> {
    return this.#stepUpWith(proof);
  }

  /** `stepUp` with one of the user's passkeys (browsers only); 409 `conflict` without one. */
  async stepUpWithPasskey(): Promise<void> {
    const { options, challengeId } = await this.request<
      PasskeyCeremony<PublicKeyCredentialRequestOptionsJSON>
    >("POST", "/auth/step-up/webauthn/options");
    const response = await startAuthentication({ optionsJSON: options });
    await this.#stepUpWith({ webauthn: { challengeId, response } });
  }

  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    const res = await this.fetch("/auth/password/change", {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ currentPassword, newPassword }),
    });
    if (!res.ok) throw await LatchkeyError.from(res);
    await this.#accept(await res.json());
  }

  /** Lifts this session's screen lock; keeps the new access token it answers with. */
  async unlock(proof: { password: string } | { code: string }): Promise<void> {
    // Tokens from before the lock stay refused, so keeping the old one would cost a refresh.
    await this.#accept(
      await this.request<{ accessToken?: string; refreshToken?: string; expiresIn?: number }>(
        "POST",
        "/auth/unlock",
        proof,
      ),
    );
  }

  lock(): Promise<void> {
    return this.request("POST", "/sessions/lock");
  }

  async sessions(): Promise<Session[]> {
    return (await this.request<{ sessions: Session[] }>("GET", "/sessions")).sessions;
  }

  revokeSession(id: string): Promise<void> {
    return this.request("DELETE", `/sessions/${encodeURIComponent(id)}`);
  }

  totpSetup(): Promise<TotpSetup> {
    return this.request<TotpSetup>("POST", "/mfa/totp/setup");
  }

  /** Turns MFA on; answers the 10 backup codes, which are shown only now. */
  async totpEnable(code: string): Promise<string[]> {
    return (await this.request<{ backupCodes: string[] }>("POST", "/mfa/totp/enable", { code }))
      .backupCodes;
  }

  /** Needs a recent `stepUp`. */
  totpDisable(): Promise<void> {
    return this.request("POST", "/mfa/totp/disable");
  }

  /** Needs a recent `stepUp`; every earlier backup code stops working. */
  async regenerateBackupCodes(): Promise<string[]> {
    return (await this.request<{ backupCodes: string[] }>("POST", "/mfa/backup-codes")).backupCodes;
  }

  async apiTokens(): Promise<ApiToken[]> {
    return (await this.request<{ tokens: ApiToken[] }>("GET", "/tokens")).tokens;
  }

  /** The answer's `token` is the secret, shown only now. */
  createApiToken(body: {
    name: string;
    scopes: ApiTokenScope[];
    expiresInDays?: number;
  }): Promise<ApiToken & { token: string }> {
    return this.request("POST", "/tokens", body);
  }

  deleteApiToken(id: string): Promise<void> {
    return this.request("DELETE", `/tokens/${encodeURIComponent(id)}`);
  }

  // Passkeys -----------------------------------------------------------------------

  /** Creates a passkey on this device (browsers only) and registers it. */
  async registerPasskey(name?: string): Promise<Passkey> {
    const { options, challengeId } = await this.request<
      PasskeyCeremony<PublicKeyCredentialCreationOptionsJSON>
    >("POST", "/webauthn/register/options");
    const response = await startRegistration({ optionsJSON: options });
    const { credential } = await this.request<{ credential: Passkey }>(
      "POST",
      "/webauthn/register/verify",
      { challengeId, response, ...(name ? { name } : {}) },
    );
    return credential;
  }

  /** The user's passkeys, oldest first. */
  async passkeys(): Promise<Passkey[]> {
    return (await this.request<{ credentials: Passkey[] }>("GET", "/webauthn/credentials"))
      .credentials;
  }

  async renamePasskey(id: string, name: string): Promise<Passkey> {
    const path = `/webauthn/credentials/${encodeURIComponent(id)}`;
    return (await this.request<{ credential: Passkey }>("PATCH", path, { name })).credential;
  }

  /** Needs a recent step-up; 409 `conflict` for the account's only way in. */
  deletePasskey(id: string): Promise<void> {
    return this.request("DELETE", `/webauthn/credentials/${encodeURIComponent(id)}`);
  }

  // Transport ----------------------------------------------------------------------

  /**
   * `fetch` with this session's credentials. A 401 that a refresh can cure triggers one
   * shared refresh, then this request goes out once more. Bodies must be replayable
   * (strings, Blobs, FormData: not streams).
   */
  async fetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const seen = this.#coordinator.version;
    const url = this.#url(input);
    const res = await this.#send(url, init, true);
    // Only Latchkey and the trusted APIs speak for this session: another origin's 401 is
    // its own business, and must not rotate (or end) the session.
    if (res.status !== 401 || !this.#origins.has(url.origin)) return res;
    const code = await problemCode(res);
    if (code !== undefined && SESSION_OVER.has(code) && url.origin === this.#ownOrigin()) {
      await this.#end(code); // revoked elsewhere (logout, admin, reset): the app must know
      return res;
    }
    if (code === undefined || !REFRESHABLE.has(code)) return res;
    let refreshed: boolean;
    try {
      refreshed = await this.#coordinator.run(seen, () => this.#rotate());
    } catch (err) {
      // Locked, or refused for good (an IP rule, a disabled account): what this request gets
      // with a live token too, and what the app must show.
      if (err instanceof LatchkeyError && refreshFailure(err) !== "transient") {
        return problemResponse(err.problem);
      }
      return res; // unreachable, rate limited or 5xx: the caller sees the original 401
    }
    return refreshed ? this.#send(url, init, true) : res;
  }

  /** JSON in, JSON out, through `fetch`; failures throw `LatchkeyError`. */
  async request<T = void>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(path, {
      method,
      ...(body === undefined ? {} : { headers: JSON_HEADERS, body: JSON.stringify(body) }),
    });
    if (!res.ok) throw await LatchkeyError.from(res);
    if (res.status === 204 || res.status === 202) return undefined as T;
    return (await res.json()) as T;
  }

  /** A WebSocket to GET /ws that authenticates, follows token pushes and reconnects. */
  socket(options: SocketOptions = {}): LatchkeySocket {
    const url = options.url ?? `${this.baseUrl.replace(/^http/, "ws")}/ws`;
    return new LatchkeySocket(
      url,
      {
        credential: () => this.#socketCredential(),
        refresh: () => this.refresh(),
        accept: (push) => this.#accept(push),
        ended: (reason) => void this.#end(reason).catch(() => {}),
      },
      options,
    );
  }

  /** Stops listening to other tabs. */
  close(): void {
    this.#coordinator.close();
  }

  // Internals --------------------------------------------------------------------

  async #send(input: string | URL, init: RequestInit, authenticate: boolean): Promise<Response> {
    const url = this.#url(input);
    const trusted = this.#origins.has(url.origin);
    const headers = new Headers(init.headers);
    if (trusted && authenticate && this.mode === "body") {
      const tokens = await this.#load();
      if (tokens && !headers.has("authorization")) {
        headers.set("authorization", `Bearer ${tokens.accessToken}`);
      }
      if (this.#stepUp && this.#stepUp.expiresAt > Date.now() && url.origin === this.#ownOrigin()) {
        headers.set("x-step-up-token", this.#stepUp.token);
      }
    }
    const credentials = trusted && this.mode === "cookie" ? "include" : init.credentials;
    return this.#fetch(url, { ...init, headers, ...(credentials ? { credentials } : {}) });
  }

  /** Paths starting with "/" are Latchkey's; anything else must be an absolute URL. */
  #url(input: string | URL): URL {
    return typeof input === "string" && input.startsWith("/")
      ? new URL(this.baseUrl + input)
      : new URL(input);
  }

  #public(path: string, body?: unknown, headers?: Record<string, string>): Promise<Response> {
    return this.#send(
      path,
      {
        method: "POST",
        headers: { ...(body === undefined ? {} : JSON_HEADERS), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      },
      false,
    );
  }

  /**
   * A request that may start a session. Cookie mode queues it behind a refresh in flight
   * (and the refreshes after it behind it), so the new session's cookies are the last the
   * browser writes; epochs keep body mode's storage right without waiting.
   */
  #signInRequest(path: string, body: unknown, headers?: Record<string, string>) {
    const send = () => this.#public(path, body, headers);
    return this.mode === "cookie" ? this.#coordinator.serial(send) : send();
  }

  async #publicVoid(path: string, body: unknown): Promise<void> {
    const res = await this.#public(path, body);
    if (!res.ok) throw await LatchkeyError.from(res);
  }

  async #publicJson<T>(path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.#public(path, body, headers);
    if (!res.ok) throw await LatchkeyError.from(res);
    return (await res.json()) as T;
  }

  /** Cookie mode may have no MFA token in hand: the browser then sends the lk_mfa cookie. */
  #mfaHeaders(): Record<string, string> | undefined {
    return this.#mfaToken ? { "x-mfa-token": this.#mfaToken } : undefined;
  }

  async #stepUpWith(proof: unknown): Promise<void> {
    const res = await this.request<{ stepUpToken?: string; expiresIn: number }>(
      "POST",
      "/auth/step-up",
      proof,
    );
    // Cookie mode: the server set lk_step_up, which the browser sends by itself.
    if (res.stepUpToken && this.mode === "body") {
      this.#stepUp = { token: res.stepUpToken, expiresAt: Date.now() + res.expiresIn * 1000 };
    }
  }

  async #signIn(res: Response): Promise<SignInResult> {
    if (!res.ok) throw await LatchkeyError.from(res);
    const body = (await res.json()) as TokenResponse | MfaPendingResponse;
    if ("mfaRequired" in body) {
      this.#mfaToken = body.mfaToken;
      return { status: "mfa_required", expiresIn: body.expiresIn };
    }
    this.#mfaToken = undefined;
    this.#epoch++;
    await this.#accept(body);
    return {
      status: "signed_in",
      user: body.user,
      ...(body.returningGuest !== undefined ? { returningGuest: body.returningGuest } : {}),
    };
  }

  /** Keeps what a response or a socket push delivered, as the mode says. */
  async #accept(body: { accessToken?: string; refreshToken?: string; expiresIn?: number }) {
    this.#endReported = false; // a session is in hand again
    if (!body.accessToken) {
      if (this.mode === "body") {
        throw new TypeError("latchkey: body mode needs tokens.delivery `both` or `body`");
      }
      return;
    }
    // Cookie mode: the server set the cookies; JavaScript keeps nothing.
    if (this.mode === "cookie") return;
    const expiresAt = Date.now() + (body.expiresIn ?? 0) * 1000;
    const refreshToken = body.refreshToken ?? (await this.#load())?.refreshToken;
    if (!refreshToken) throw new TypeError("latchkey: an access token without a session");
    await this.#save({ accessToken: body.accessToken, refreshToken, accessExpiresAt: expiresAt });
  }

  /** One rotation; false when the server says the session is over. */
  async #rotate(): Promise<boolean> {
    const epoch = this.#epoch;
    // Browser tabs share the cookies, but the "refreshed" message of the tab that held the
    // lock before us may still be on its way: ask the server whether ours already work.
    if (this.mode === "cookie" && this.#coordinator.sharesLocks) {
      const probe = await this.#send("/users/me", { method: "GET" }, true);
      if (probe.ok) return true;
    }
    let body: { refreshToken: string } | undefined;
    if (this.mode === "body") {
      const known = this.#tokens;
      const tokens = await this.#load(true);
      if (!tokens) return false;
      // Another tab rotated while we waited for the lock: its pair is ours too.
      if (known && tokens.refreshToken !== known.refreshToken) return true;
      body = { refreshToken: tokens.refreshToken };
    }
    const res = await this.#public("/auth/refresh", body);
    // Signed out (or in again) meanwhile: this answer is about a session no longer in hand,
    // and keeping its successor would put a pair back into storage after a logout.
    if (epoch !== this.#epoch) return false;
    if (!res.ok) {
      const err = await LatchkeyError.from(res);
      if (refreshFailure(err) !== "ended") throw err;
      await this.#end(err.code);
      return false;
    }
    await this.#accept((await res.json()) as TokenResponse);
    return true;
  }

  /** Cookie mode: the browser sends lk_access with the handshake (from an allowed Origin). */
  async #socketCredential(): Promise<{ bearer?: string } | undefined> {
    if (this.mode === "cookie") return {};
    const known = await this.#load();
    if (known && known.accessExpiresAt - SOCKET_TOKEN_MARGIN_MS > Date.now()) {
      return { bearer: known.accessToken };
    }
    if (!known || !(await this.refresh())) return undefined;
    const fresh = await this.#load();
    return fresh ? { bearer: fresh.accessToken } : undefined;
  }

  /** Shared storage is read every time: another tab may have rotated the pair. */
  async #load(reread = false): Promise<StoredTokens | null> {
    if (this.#tokens === undefined || reread || this.#storage.shared) {
      this.#tokens = await this.#storage.load();
    }
    return this.#tokens;
  }

  async #save(tokens: StoredTokens | null): Promise<void> {
    this.#tokens = tokens;
    await this.#storage.save(tokens);
  }

  async #forget(): Promise<void> {
    this.#epoch++;
    this.#stepUp = undefined;
    this.#mfaToken = undefined;
    if (this.mode === "body") await this.#save(null);
  }

  /** The user ended the session: its later 401s (a socket's revocation) are no news to report. */
  async #signedOut(): Promise<void> {
    await this.#forget();
    this.#endReported = true;
  }

  /** Once per session: later 401s (cookie mode refreshes on each) must not report it again. */
  async #end(reason: string): Promise<void> {
    await this.#forget();
    if (this.#endReported) return;
    this.#endReported = true;
    this.#onSessionEnd?.(reason);
  }

  #ownOrigin(): string {
    return new URL(this.baseUrl).origin;
  }
}

async function problemCode(res: Response): Promise<string | undefined> {
  const body = (await res
    .clone()
    .json()
    .catch(() => null)) as { code?: unknown } | null;
  return typeof body?.code === "string" ? body.code : undefined;
}
