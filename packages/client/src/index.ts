export { type ClientOptions, LatchkeyClient, type Mode } from "./client.js";
export { LatchkeyError } from "./errors.js";
export {
  CLOSE_FORBIDDEN,
  CLOSE_LOCKED,
  CLOSE_UNAUTHENTICATED,
  LatchkeySocket,
  type SocketOptions,
  type SocketState,
  SUBPROTOCOL,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./socket.js";
export { memoryStorage, type StoredTokens, type TokenStorage, webStorage } from "./storage.js";
export type * from "./types.js";
