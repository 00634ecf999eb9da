import { LatchkeyClient } from "../../client/src/index.js";

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
