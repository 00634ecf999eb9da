// Bundles the function entries into one ES module each, for AWS Lambda and Google Cloud
// Functions: Node resolves and links ~1 000 files for an unbundled start, a third of a
// cold start (bench/RESULTS.md, "Cold start"). Usage: npm run build:functions
// Output: packages/server/dist-functions/{lambda,gcf-entry}.mjs (+ source maps).
import { rmSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const outdir = `${root}packages/server/dist-functions`;

/**
 * Left out of the bundle, so the deployment ships them in node_modules: native addons,
 * the drivers loaded only when configured, Swagger UI (serves files beside its own code;
 * functions skip /docs, so it is never loaded) and the Functions Framework (it must be
 * the very instance that loads this module, or the registration is not seen). Pino is
 * bundled: Latchkey logs to stdout and starts no transport worker. Nodemailer and the
 * QR encoder load on first use (a mail, an MFA set-up): outside the bundle a cold start
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

rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: {
    lambda: `${root}packages/server/src/serverless/lambda.ts`,
    "gcf-entry": `${root}packages/server/src/serverless/gcf-entry.ts`,
  },
  outdir,
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
console.log(`Bundled lambda.mjs and gcf-entry.mjs into ${outdir}`);
