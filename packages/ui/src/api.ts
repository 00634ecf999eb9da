import { LatchkeyClient, LatchkeyError, type User } from "../../client/src/index.js";

/**
 * Same origin, cookie mode: the browser keeps the tokens as HttpOnly cookies, so no
 * script on these pages ever holds a refresh token. The server must list this
 * origin in allowedOrigins (its own publicUrl is there by default).
 */
export const client = new LatchkeyClient({
  mode: "cookie",
  baseUrl: location.origin,
  onSessionEnd: () => {
    if (location.pathname.startsWith("/ui/account")) location.assign("/ui/login");
  },
});

export const go = (path: string): void => location.assign(path);

/**
 * The signed-in user, or why there is none. A screen-locked session answers 423 even once
 * its access token has expired: the client's refresh then meets the lock, and the client
 * answers with that 423 rather than the expired token's 401.
 */
export async function currentUser(): Promise<User | "locked" | "signed_out"> {
  try {
    return await client.me();
  } catch (err) {
    if (!(err instanceof LatchkeyError)) throw err;
    if (err.code === "screen_locked") return "locked";
    if (err.status === 401) return "signed_out";
    throw err;
  }
}
