import awsLambdaFastify, { type LambdaResponse } from "@fastify/aws-lambda";
import type { Latchkey } from "../app.js";
import { appFromEnvironment, once } from "./instance.js";

/** API Gateway REST (payload 1.0), HTTP API (2.0) and function-URL events. */
export type LambdaHandler = (event: unknown, context: unknown) => Promise<LambdaResponse>;

/**
 * An AWS Lambda handler for the app `build` returns, built on the first invocation.
 * Responses keep every Set-Cookie: `multiValueHeaders` for payload 1.0, `cookies` for
 * 2.0. The client IP is the event's `requestContext` source IP, the peer API Gateway
 * saw; `trustProxy` applies on top as on a server (a CDN in front of API Gateway).
 */
export function createLambdaHandler(build: () => Promise<Latchkey>): LambdaHandler {
  const instance = once(async () => {
    const app = await build();
    const proxy = awsLambdaFastify(app.http, {
      // Handlers never read the raw event; skipping the decoration saves a map per request.
      decorateRequest: false,
      // `?a=x,y` stays one string, as over HTTP; the library splits it by default on 2.0.
      parseCommaSeparatedQueryParams: false,
    });
    return { app, proxy };
  });
  return async (event, context) => {
    const { app, proxy } = await instance();
    try {
      return await proxy(event, context as Parameters<typeof proxy>[1]);
    } finally {
      // The instance is frozen once the handler returns: write the audit events now.
      await app.svc.auditLog.flush();
    }
  };
}

/** The deployed entry: `handler` in packages/server/dist/serverless/lambda.js. */
export const handler = createLambdaHandler(appFromEnvironment);
