import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import staticFiles from "@fastify/static";
import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { Services } from "../services.js";
import { sendProblem } from "./problem.js";

/** packages/ui/dist beside this package: the same path from src/http and dist/http. */
const DEFAULT_DIR = fileURLToPath(new URL("../../../ui/dist", import.meta.url));

/**
 * Scripts and styles only from /ui/assets (no inline code, no eval), images also as
 * data: URLs (the TOTP QR code), API calls to this origin only, no framing.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** One path segment of letters and dashes: a page. Anything else under /ui is a 404. */
const PAGE = /^\/ui\/(?:[a-z-]+\/?)?(?:\?.*)?$/;

/**
 * The hosted pages: one HTML shell for every page path (the script picks the page by
 * path), hashed assets cached for a year. Without a build the API still starts: the
 * pages are an extra, so /ui then answers 404 saying how to build them.
 */
export const uiRoutes: FastifyPluginAsync<{ svc: Services }> = async (app, { svc }) => {
  const dir = svc.config.ui.dir ?? DEFAULT_DIR;
  const index = readIndex(dir);

  app.addHook("onSend", async (_request, reply) => {
    reply.header("content-security-policy", CSP);
    reply.header("x-content-type-options", "nosniff");
    // Same-origin requests keep their Origin (the CSRF check reads it); tokens in page
    // URLs never reach another site.
    reply.header("referrer-policy", "same-origin");
    reply.header("cross-origin-opener-policy", "same-origin");
  });

  const page = async (request: { url: string }, reply: FastifyReply) => {
    if (index === undefined) {
      return sendProblem(
        reply,
        404,
        "not_found",
        "The hosted pages are not built: run npm run build",
      );
    }
    if (!PAGE.test(request.url)) return sendProblem(reply, 404, "not_found", "No such page");
    // The shell names the current hashed assets, so it is revalidated on every load.
    return reply.type("text/html; charset=utf-8").header("cache-control", "no-cache").send(index);
  };
  app.get("/ui", { schema: { hide: true } }, async (_request, reply) => reply.redirect("/ui/"));
  app.get("/ui/", { schema: { hide: true } }, page);
  app.get("/ui/*", { schema: { hide: true } }, page);

  if (index === undefined) {
    svc.log.warn({ dir }, "hosted pages not built (npm run build); /ui answers 404");
    return;
  }
  await app.register(staticFiles, {
    root: join(dir, "assets"),
    prefix: "/ui/assets/",
    index: false,
    // File names carry a content hash (Vite), so a name never changes content.
    immutable: true,
    maxAge: "365d",
    schemaHide: true,
  });
};

function readIndex(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, "index.html"), "utf8");
  } catch {
    return undefined;
  }
}
