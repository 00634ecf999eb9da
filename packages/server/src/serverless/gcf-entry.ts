import { http } from "@google-cloud/functions-framework";
import { createFunctionHandler } from "./gcf.js";
import { appFromEnvironment } from "./instance.js";

/**
 * The deployed entry: `functions-framework --source=packages/server/dist/serverless/gcf-entry.js
 * --target=latchkey` (or `gcloud functions deploy --entry-point=latchkey`). Registering is
 * all that happens at import; the app is built on the first request.
 */
http("latchkey", createFunctionHandler(appFromEnvironment));
