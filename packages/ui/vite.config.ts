import { defineConfig } from "vite";

/** The server that `npm run dev -w @latchkey/ui` forwards API calls to. */
const API = process.env.LATCHKEY_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  // The server mounts dist/ under /ui (packages/server/src/http/ui.ts).
  base: "/ui/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // The polyfill is for browsers without modulepreload; every evergreen browser has it.
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: Object.fromEntries(
      ["/auth", "/users", "/sessions", "/mfa", "/webauthn", "/tokens", "/ws"].map((path) => [
        path,
        { target: API, ws: path === "/ws" },
      ]),
    ),
  },
});
