// Bundles Latchkey into one ES module per entry (the server's first-use parts in chunks
// beside it): Node resolves and links ~1 000 files for an unbundled start, most of the
// time to ready (bench/RESULTS.md, "Start-up" and "Cold
// start"). Usage: node deploy/bundle.mjs server|functions
//   server     packages/server/dist/bundle/latchkey.mjs, the CLI (`npm start` runs its `serve`)
//   functions  packages/server/dist-functions/{lambda,gcf-entry}.mjs (npm run build:functions)
// Each with a source map and the bundled packages' licences beside it.
import { rmSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const src = `${root}packages/server/src`;

const targets = {
  // At the same depth below packages/ as the unbundled dist/http/ui.js, so the hosted
  // pages' directory (../../../ui/dist from the module) resolves the same.
  server: {
    outdir: `${root}packages/server/dist/bundle`,
    entryPoints: { latchkey: `${src}/cli.ts` },
    // What loads on first use (passkeys' X.509 stack, the password denylist, the socket
    // route) goes in chunks of its own, so a start does not parse it: ~100 ms here.
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
  },
  functions: {
    outdir: `${root}packages/server/dist-functions`,
    entryPoints: {
      lambda: `${src}/serverless/lambda.ts`,
      "gcf-entry": `${src}/serverless/gcf-entry.ts`,
    },
  },
};

/**
 * Left out of the bundle, so the deployment ships them in node_modules: native addons,
 * the drivers loaded only when configured, Swagger UI (serves files beside its own code;
 * functions skip /docs, so it is never loaded) and the Functions Framework (it must be
 * the very instance that loads this module, or the registration is not seen). Pino is
 * bundled: Latchkey logs to stdout and starts no transport worker. Nodemailer and the
 * QR encoder load on first use (a mail, an MFA set-up): outside the bundle a start
 * neither parses nor runs them. So does zxcvbn-ts with its ~1.5 MB of dictionaries (only
 * when a minimum password score is configured).
 */
const external = [
  "better-sqlite3",
  "@node-rs/argon2",
  "pg",
  "ioredis",
  "@fastify/swagger-ui",
  "@google-cloud/functions-framework",
  "nodemailer",
  "qrcode",
  "@zxcvbn-ts/core",
  "@zxcvbn-ts/language-common",
];

const name = process.argv[2];
const target = targets[name];
if (!target) {
  console.error(`Usage: node deploy/bundle.mjs ${Object.keys(targets).join("|")}`);
  process.exit(2);
}
rmSync(target.outdir, { recursive: true, force: true });
await build({
  ...target,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external,
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  // Bundled CommonJS packages call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __latchkeyRequire } from 'node:module'; const require = __latchkeyRequire(import.meta.url);",
  },
  logLevel: "warning",
});
console.log(`Bundled ${Object.keys(target.entryPoints).join(", ")} into ${target.outdir}`);
