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

/** The 401s a refresh may cure (as the client's own list): expired, or its cookie aged out. */
const REFRESHABLE = new Set(["token_expired", "unauthenticated", "invalid_token"]);

/**
 * The signed-in user, or why there is none. Once a screen-locked session's access token
 * has expired, GET /users/me answers 401 (`token_expired`, or `unauthenticated` once the
 * browser dropped the lk_access cookie with it) and the client's refresh meets
 * the lock (423), which it keeps to itself (a lock does not end the session) while it
 * hands back the 401: asking for the refresh once more tells a lock from a session gone.
 */
export async function currentUser(): Promise<User | "locked" | "signed_out"> {
  try {
    return await client.me();
  } catch (err) {
    if (!(err instanceof LatchkeyError)) throw err;
    if (err.code === "screen_locked") return "locked";
    // Refreshable: expired, or gone with the cookie that aged out with it (unauthenticated).
    if (!REFRESHABLE.has(err.code)) {
      if (err.status === 401) return "signed_out";
      throw err;
    }
  }
  try {
    return (await client.refresh()) ? await client.me() : "signed_out";
  } catch (err) {
    if (err instanceof LatchkeyError && err.code === "screen_locked") return "locked";
    if (err instanceof LatchkeyError && err.status === 401) return "signed_out";
    throw err;
  }
}
