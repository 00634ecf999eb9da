import cookie from "@fastify/cookie";
import swagger from "@fastify/swagger";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import Fastify, { type FastifyInstance, LogController } from "fastify";
import { EMAIL_ADDRESS } from "../domain/user.js";
import { CREDENTIAL_ID_MAX_B64U } from "../domain/webauthn.js";
import type { Services } from "../services.js";
import { shedWhenClosing } from "./closing.js";
import { registerCors } from "./cors.js";
import { registerDocsPage } from "./docs-page.js";
import { refusesLocked } from "./guards.js";
import { lazyCompilers } from "./lazy-compilers.js";
import {
  clientErrorHandler,
  connectRefused,
  errorHandler,
  expectationFailed,
  notFoundHandler,
} from "./problem.js";
import { lazyRequestLogger, logRequest } from "./request-logger.js";
import { adminRoutes } from "./routes/admin.js";
import { auditRoutes } from "./routes/audit.js";
import { authRoutes } from "./routes/auth.js";
import { emailRoutes } from "./routes/email.js";
import { guestRoutes } from "./routes/guest.js";
import { healthRoutes, type ReadinessCheck } from "./routes/health.js";
import { introspectRoutes } from "./routes/introspect.js";
import { metricsRoutes } from "./routes/metrics.js";
import { mfaRoutes } from "./routes/mfa.js";
import { oauthRoutes } from "./routes/oauth.js";
import { screenLockRoutes } from "./routes/screen-lock.js";
import { sessionRoutes } from "./routes/sessions.js";
import { tokenRoutes } from "./routes/tokens.js";
import { userRoutes } from "./routes/users.js";
import { webauthnRoutes } from "./routes/webauthn.js";
import { wellKnownRoutes } from "./routes/well-known.js";
import { Problem, TokenResponse, UserView } from "./schemas.js";
import { securityHeaders } from "./security-headers.js";
import { uiRoutes } from "./ui.js";

/** The HTTP server: plugins, the error handler and every route. Owns nothing it does not close. */
export async function buildHttp(
  svc: Services,
  checks: ReadinessCheck[],
  options: { docs: boolean; websocket?: boolean } = { docs: true },
): Promise<FastifyInstance> {
  const { config } = svc;
  const genReqId = requestIds();
  const app = Fastify({
    loggerInstance: svc.log,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: config.bodyLimitBytes,
    // A request must arrive whole within this (Node's default, off in Fastify): a client
    // trickling a body cannot hold a connection open for ever.
    requestTimeout: 30_000,
    trustProxy: config.trustProxy.length > 0 ? [...config.trustProxy] : false,
    // The longest path parameter a route takes (a passkey's credential ID), so that each
    // route's schema judges its own: at Fastify's default of 100, a longer credential ID
    // (WebAuthn allows 1364 characters) answered 414 and could be neither renamed nor deleted.
    routerOptions: { maxParamLength: CREDENTIAL_ID_MAX_B64U },
    genReqId,
    // A malformed URL is refused before routing, so the error handler would not see it.
    frameworkErrors: errorHandler,
    clientErrorHandler,
    // RFC 9112 §3.2's Host rule is ours (host-header.ts, checked in cors.ts's hook).
    http: { requireHostHeader: false },
    schemaController: { compilersFactory: lazyCompilers() },
    ajv: {
      // A string where a boolean belongs is a client bug to report, not to paper over.
      // allErrors lists every bad field; bodies are bounded by bodyLimit, so its cost is too.
      customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true },
      onCreate: (ajv) => ajv.addFormat("email", EMAIL_ADDRESS),
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // SDKs often send `content-type: application/json` with no body on refresh and
  // logout; treat that as no body. Anything else goes to Fastify's own (safe) parser.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "") return done(null, undefined);
    parseJson(request, body as string, done);
  });

  // First of the preClose hooks (see closing.ts).
  shedWhenClosing(app, {
    log: svc.log,
    genReqId,
    trustProxy: config.trustProxy,
    headers: securityHeaders(config),
  });
  app.server.on("checkExpectation", expectationFailed);
  app.server.on("connect", connectRefused);
  // A client that sends its request and hangs up (a load generator when its time is up)
  // still gets that request carried out: by default Node aborts a request whose client
  // half-closes, and drops its socket, so a shutdown would not wait for the sign-in still
  // hashing and close the database under it. Undocumented, but read by Node's HTTP server
  // since 0.x (`socketOnEnd`); sockets without a request in flight still close at once.
  (app.server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
  app.decorateRequest("auth", null);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler(notFoundHandler);
  // Request timings by route pattern, never the raw URL (ids in paths would make a series
  // per user). Each route binds its recorder when it is added, so a request does not
  // build Fastify's `request.routeOptions` to learn which route it took.
  app.addHook("onRoute", (route) => {
    const record = svc.metrics.requestRecorder(route.url);
    route.onResponse = [
      ...[route.onResponse ?? []].flat(),
      (request, reply, done) => {
        record(request.method, reply.statusCode, reply.elapsedTime / 1000);
        done();
      },
    ];
  });
  // A screen-locked session is 423 on every route behind requireAuth but unlock (README.md,
  // "Profile and session policies"): said here once, so no route's document can leave it out.
  app.addHook("onRoute", (route) => {
    const response = route.schema?.response as Record<string, unknown> | undefined;
    if (response && !("423" in response) && refusesLocked(route.onRequest)) {
      response["423"] = Type.Ref(Problem);
    }
  });
  const recordUnmatched = svc.metrics.requestRecorder("unmatched");
  // One structured line per request (a WebSocket handshake's is written by ws/route.ts).
  // Written through the root logger, the request's id in the line, so that a request
  // that logs nothing else never makes its own child logger (see request-logger.ts).
  app.addHook("onResponse", (request, reply, done) => {
    if (request.is404) recordUnmatched(request.method, reply.statusCode, reply.elapsedTime / 1000);
    logRequest(svc.log, request, reply.statusCode, reply.elapsedTime);
    done();
  });

  await app.register(cookie);
  // Also refuses requests that break the Host rule (host-header.ts).
  registerCors(app, config.allowedOrigins, securityHeaders(config));
  await registerOpenApi(app, svc, options.docs);

  for (const schema of [Problem, UserView, TokenResponse]) app.addSchema(schema);
  await app.register(healthRoutes, { svc, checks });
  await app.register(wellKnownRoutes, { svc });
  await app.register(authRoutes, { svc });
  await app.register(emailRoutes, { svc });
  await app.register(mfaRoutes, { svc });
  await app.register(guestRoutes, { svc });
  await app.register(userRoutes, { svc });
  await app.register(sessionRoutes, { svc });
  await app.register(screenLockRoutes, { svc });
  await app.register(tokenRoutes, { svc });
  await app.register(adminRoutes, { svc });
  await app.register(auditRoutes, { svc });
  await app.register(metricsRoutes, { svc });
  await app.register(oauthRoutes, { svc });
  await app.register(webauthnRoutes, { svc });
  await app.register(introspectRoutes, { svc });
  // Loaded only where sockets can live: a function's HTTP trigger cannot upgrade one.
  if (options.websocket ?? true) {
    await app.register((await import("../ws/route.js")).wsRoutes, { svc });
  }
  if (config.ui.enabled) await app.register(uiRoutes, { svc });
  return app;
}

/** Fastify's default request ids (`req-1`, `req-2`, … in base 36), shared with closing.ts. */
function requestIds(): () => string {
  let next = 0;
  return () => {
    next = (next + 1) & 0x7fffffff;
    return `req-${next.toString(36)}`;
  };
}

async function registerOpenApi(app: FastifyInstance, svc: Services, docs: boolean): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Latchkey",
        version: "0.1.0",
        description:
          "Self-hosted authentication server. Errors are application/problem+json with a stable " +
          "`code`. Any route answers 503 `service_unavailable` to a request that arrives while " +
          "the server shuts down, or that got no PostgreSQL connection within 5 s: retry it.",
      },
      servers: [{ url: svc.config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
          cookie: { type: "apiKey", in: "cookie", name: "lk_access" },
          mfaToken: { type: "apiKey", in: "header", name: "X-MFA-Token" },
          mfaCookie: { type: "apiKey", in: "cookie", name: "lk_mfa" },
          stepUpToken: {
            type: "apiKey",
            in: "header",
            name: "X-Step-Up-Token",
            description:
              "From POST /auth/step-up (5 minutes, this session only). An account with no " +
              "password, TOTP or passkey (a guest, a provider-only account) has nothing to step " +
              "up with: for it, a session less than 5 minutes old counts instead (sign in again).",
          },
          stepUpCookie: { type: "apiKey", in: "cookie", name: "lk_step_up" },
          metricsToken: {
            type: "http",
            scheme: "bearer",
            description: "LATCHKEY_METRICS_TOKEN, for GET /metrics only",
          },
          apiToken: {
            type: "http",
            scheme: "bearer",
            bearerFormat: "lk_…",
            description:
              "An API token from POST /tokens, on routes that list a scope it grants: the " +
              "scope itself, its resource (`sessions`), its action (`read`) or `*`; see " +
              'README.md "API tokens".',
          },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) => (json.$id as string) ?? `def-${i}`,
    },
    transformObject: (document) =>
      "openapiObject" in document
        ? withOptionalBodies(withWireContentTypes(document.openapiObject))
        : document.swaggerObject,
  });
  if (docs) registerDocsPage(app, svc.config.publicUrl);
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

type OpenApiDocument = { paths?: Record<string, object | undefined> };

const isProblem = (media: unknown) =>
  (media as { schema?: { $ref?: string } }).schema?.$ref === "#/components/schemas/Problem";

type RequestBody = { required?: boolean; content?: Record<string, { schema?: unknown }> };

/**
 * A body its route does without (refresh and logout take their token from a cookie or
 * the Authorization header; passwordless passkey options need nothing) is
 * `required: false`, where @fastify/swagger marks every body required and a generated
 * client would insist on sending one. Such routes admit `null`, Fastify's value for no body.
 */
function withOptionalBodies<D extends OpenApiDocument>(document: D): D {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations ?? {}) as unknown[]) {
      const body = (operation as { requestBody?: RequestBody }).requestBody;
      const schema = body?.content?.["application/json"]?.schema as
        | { anyOf?: { type?: unknown }[] }
        | undefined;
      if (body && schema?.anyOf?.some((branch) => branch.type === "null")) body.required = false;
    }
  }
  return document;
}

/**
 * The content types the server actually sends, where @fastify/swagger can only say
 * application/json: every problem is application/problem+json, and /metrics answers
 * Prometheus text. Told apart by schema, not status: /readyz's 503 is its readiness
 * report (application/json), which a probe reads like its 200.
 */
function withWireContentTypes<D extends OpenApiDocument>(document: D): D {
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    for (const operation of Object.values(operations ?? {}) as unknown[]) {
      const responses = (operation as { responses?: Record<string, { content?: object }> })
        .responses;
      for (const [status, response] of Object.entries(responses ?? {})) {
        const content = response.content as Record<string, unknown> | undefined;
        const json = content?.["application/json"];
        if (!content || json === undefined) continue;
        const wire =
          Number(status) >= 400 && isProblem(json)
            ? "application/problem+json"
            : path === "/metrics"
              ? "text/plain; version=0.0.4"
              : null;
        if (!wire) continue;
        delete content["application/json"];
        content[wire] = json;
      }
    }
  }
  return document;
}
