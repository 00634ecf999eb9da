import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "./helpers.js";

// A stand-in build, so these tests do not depend on `npm run build` (the browser suite
// covers the real pages).
let built: string;
let empty: string;
beforeAll(() => {
  built = mkdtempSync(join(tmpdir(), "latchkey-ui-"));
  mkdirSync(join(built, "assets"));
  writeFileSync(
    join(built, "index.html"),
    '<!doctype html><script type="module" src="/ui/assets/app-1a2b.js"></script>',
  );
  writeFileSync(join(built, "assets", "app-1a2b.js"), "console.log('pages')");
  writeFileSync(join(built, "assets", "app-3c4d.css"), "body{margin:0}");
  mkdirSync(join(built, "assets", "nested"));
  writeFileSync(join(built, "assets", "nested", "deep.js"), "1");
  empty = mkdtempSync(join(tmpdir(), "latchkey-ui-empty-"));
});
afterAll(() => {
  rmSync(built, { recursive: true, force: true });
  rmSync(empty, { recursive: true, force: true });
});

let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const get = (a: TestApp, url: string) => a.http.inject({ method: "GET", url });

describe("hosted pages under /ui", () => {
  it("serves the page shell for every page path, with a CSP that allows no inline script", async () => {
    app = await startTestApp({ ui: { enabled: true, dir: built } });
    for (const path of [
      "/ui/",
      "/ui/login",
      "/ui/account",
      "/ui/reset-password?token=abc",
      "/ui/magic-link?token=x",
      "/ui/verify-email?token=y",
    ]) {
      const res = await get(app, path);
      expect(res.statusCode, path).toBe(200);
      expect(res.headers["content-type"]).toMatch(/^text\/html/);
      expect(res.body).toContain("/ui/assets/app-1a2b.js");
      expect(res.headers["cache-control"]).toBe("no-cache");
    }
    const csp = String((await get(app, "/ui/login")).headers["content-security-policy"]);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    // Browsers without frame-ancestors must not frame the sign-in form either.
    expect((await get(app, "/ui/login")).headers["x-frame-options"]).toBe("DENY");
    expect((await get(app, "/ui/login")).headers["referrer-policy"]).toBe("same-origin");
  });

  it("serves hashed assets for a year and answers 404 for anything else", async () => {
    app = await startTestApp({ ui: { enabled: true, dir: built } });
    const asset = await get(app, "/ui/assets/app-1a2b.js");
    expect(asset.statusCode).toBe(200);
    expect(asset.body).toBe("console.log('pages')");
    expect(asset.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(asset.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(asset.headers["content-security-policy"]).toBeDefined();
    expect(asset.headers["x-content-type-options"]).toBe("nosniff");
    const css = await get(app, "/ui/assets/app-3c4d.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    const head = await app.http.inject({ method: "HEAD", url: "/ui/assets/app-3c4d.css" });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe("");
    for (const path of [
      "/ui/assets/missing.js",
      "/ui/assets/nested/deep.js",
      "/ui/assets/nested",
      "/ui/assets/..%2Findex.html",
      "/ui/assets/%2e%2e%2f..%2fpackage.json",
    ]) {
      const res = await get(app, path);
      expect(res.statusCode, path).toBe(404);
      expect(res.json(), path).toMatchObject({ code: "not_found" });
    }
    const deep = await get(app, "/ui/account/../../etc/passwd");
    expect(deep.statusCode).toBe(404);
    expect((await get(app, "/ui/Nope.html")).json()).toMatchObject({ code: "not_found" });
    const bare = await get(app, "/ui");
    expect(bare.statusCode).toBe(302);
    expect(bare.headers.location).toBe("/ui/");
  });

  it("starts without a build: the API works and /ui says how to build the pages", async () => {
    app = await startTestApp({ ui: { enabled: true, dir: empty } });
    const res = await get(app, "/ui/login");
    expect(res.statusCode).toBe(404);
    expect(res.json().detail).toMatch(/npm run build/);
    expect((await get(app, "/healthz")).statusCode).toBe(200);
  });

  it("can be turned off", async () => {
    app = await startTestApp({ ui: { enabled: false, dir: built } });
    expect((await get(app, "/ui/login")).statusCode).toBe(404);
    expect((await get(app, "/ui/assets/app-1a2b.js")).statusCode).toBe(404);
  });
});
