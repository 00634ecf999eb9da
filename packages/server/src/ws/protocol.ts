import type { RawData } from "ws";
import { ERROR_STATUS, type ErrorCode } from "../domain/errors.js";

/** The subprotocol the server selects (API.md "WebSocket: GET /ws"); the bearer entry never is. */
export const SUBPROTOCOL = "latchkey.v1";
const BEARER_PROTOCOL_PREFIX = "bearer.";
/** Longer than any token we issue; a longer credential is refused unread. */
const MAX_TOKEN_LENGTH = 4096;

/**
 * Close codes: 4000 + the HTTP status of the same refusal (4401 unauthenticated or
 * revoked, 4403 forbidden, 4423 screen-locked, 4429 rate-limited), 4400 for a broken
 * protocol. The close reason is the contract's error `code`.
 */
export const CLOSE_PROTOCOL_ERROR = 4400;
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_TOO_MANY = 4429;
/** RFC 6455 §7.4.1. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_INTERNAL_ERROR = 1011;

export const closeCodeFor = (code: ErrorCode): number => {
  const status = ERROR_STATUS[code];
  return [401, 403, 423, 429].includes(status) ? 4000 + status : CLOSE_PROTOCOL_ERROR;
};

/** How a socket proves who it is. `via` decides whether new access tokens are pushed to it. */
export type SocketCredential =
  | { kind: "access"; token: string; via: "protocol" | "cookie" | "message" }
  | { kind: "refresh"; token: string };

export type ClientMessage = { type: "auth"; credential: SocketCredential } | { type: "ping" };

export type ServerMessage =
  | {
      type: "authenticated";
      userId: string;
      sessionId: string;
      accessToken?: string;
      refreshToken?: string;
      expiresIn?: number;
    }
  | { type: "token"; accessToken: string; expiresIn: number }
  | { type: "session_revoked" }
  | { type: "pong" };

/** The access token from `Sec-WebSocket-Protocol: latchkey.v1, bearer.<jwt>`, if offered. */
export function protocolBearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const entry of header.split(",")) {
    const value = entry.trim();
    if (value.startsWith(BEARER_PROTOCOL_PREFIX)) {
      const token = value.slice(BEARER_PROTOCOL_PREFIX.length);
      return token && token.length <= MAX_TOKEN_LENGTH ? token : undefined;
    }
  }
  return undefined;
}

/** A text frame holding one known JSON message, else undefined (the caller closes 4400). */
export function parseClientMessage(data: RawData, isBinary: boolean): ClientMessage | undefined {
  if (isBinary) return undefined;
  let message: unknown;
  try {
    message = JSON.parse(data.toString());
  } catch {
    return undefined;
  }
  if (typeof message !== "object" || message === null) return undefined;
  const { type, accessToken, refreshToken } = message as Record<string, unknown>;
  if (type === "ping") return { type };
  if (type !== "auth") return undefined;
  // Exactly one credential: a message naming both is ambiguous, so it is refused.
  if (isToken(accessToken) && refreshToken === undefined) {
    return { type, credential: { kind: "access", token: accessToken, via: "message" } };
  }
  if (isToken(refreshToken) && accessToken === undefined) {
    return { type, credential: { kind: "refresh", token: refreshToken } };
  }
  return undefined;
}

const isToken = (value: unknown): value is string =>
  typeof value === "string" && value.length > 0 && value.length <= MAX_TOKEN_LENGTH;
