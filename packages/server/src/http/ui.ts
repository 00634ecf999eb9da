import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
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

/** What Vite writes into assets/, by extension. */
const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
};

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
    // frame-ancestors for browsers that predate it, as /docs does: the sign-in form must
    // not be framed (clickjacking) anywhere.
    reply.header("x-frame-options", "DENY");
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
  const assets = readAssets(join(dir, "assets"));
  app.get<{ Params: { name: string } }>(
    "/ui/assets/:name",
    { schema: { hide: true } },
    async (request, reply) => {
      const asset = assets.get(request.params.name);
      if (!asset) return sendProblem(reply, 404, "not_found", "No such asset");
      // The name carries the content's hash, so it never changes content.
      return reply
        .type(asset.type)
        .header("cache-control", "public, max-age=31536000, immutable")
        .send(asset.body);
    },
  );
};

function readIndex(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, "index.html"), "utf8");
  } catch {
    return undefined;
  }
}

/**
 * The built assets, read once: a few files (~40 kB) that cannot change while the server
 * runs. A request's name is looked up here, never joined to a path, so no request
 * reaches a file outside them. This replaced @fastify/static, whose file server and its
 * dependencies every start loaded for two files (bench/RESULTS.md).
 */
function readAssets(dir: string): Map<string, { body: Buffer; type: string }> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  if (!existsSync(dir)) return assets;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const type = CONTENT_TYPES[extname(entry.name)] ?? "application/octet-stream";
    assets.set(entry.name, { body: readFileSync(join(dir, entry.name)), type });
  }
  return assets;
}
