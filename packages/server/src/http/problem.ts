import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { AuthError, ERROR_STATUS, type ErrorCode, type FieldError } from "../domain/errors.js";
import { isForeignKeyViolation } from "../store/db.js";
import { DatabaseUnavailableError } from "../store/postgres.js";
import { TEXT_PATTERN } from "./schemas.js";

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  417: "Expectation Failed",
  423: "Locked",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Fastify's own client errors, by the contract code they mean. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "payload_too_large",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "validation_failed",
  FST_ERR_CTP_EMPTY_JSON_BODY: "validation_failed",
  FST_ERR_CTP_INVALID_JSON_BODY: "validation_failed",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "validation_failed",
  FST_ERR_BAD_URL: "validation_failed",
  FST_ERR_MAX_PARAM_LENGTH: "validation_failed",
};

/** Where our status differs from Fastify's: an over-long path parameter is a schema failure like any other over-long field, not Fastify's 414. */
const FASTIFY_STATUS: Record<string, number> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_MAX_PARAM_LENGTH: 400,
};

/**
 * RFC 9457 problem details with the contract's `code`. A `validation_failed` always
 * lists its fields, the whole body (path "") when nothing narrower is to blame.
 */
function problem(status: number, code: string, detail: string, errors?: FieldError[]) {
  const fields = errors ?? (code === "validation_failed" ? [{ path: "", message: detail }] : null);
  return {
    type: `urn:latchkey:error:${code}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    code,
    ...(fields ? { errors: fields } : {}),
  };
}

/** 401 codes that mean "a token was presented and refused" (RFC 6750 §3.1 `invalid_token`). */
const REFUSED_TOKEN_CODES = new Set([
  "invalid_token",
  "token_expired",
  "session_revoked",
  "refresh_token_reused",
  "user_not_found",
]);

/**
 * The Bearer challenge of a 401. A request that carried no token gets the bare challenge
 * (RFC 6750 §3.1); one whose token was refused also gets `error="invalid_token"`, which
 * generic OAuth clients read to decide to refresh, with our code as the description: the
 * same challenge @latchkey/verify answers, so a client sees one format from both.
 */
function bearerChallenge(code: string): string {
  return REFUSED_TOKEN_CODES.has(code)
    ? `Bearer realm="latchkey", error="invalid_token", error_description="${code}"`
    : 'Bearer realm="latchkey"';
}

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  errors?: FieldError[],
): FastifyReply {
  // RFC 9110 §15.5.2: a 401 names the scheme that would work (RFC 6750 §3).
  if (status === 401) reply.header("www-authenticate", bearerChallenge(code));
  return reply
    .code(status)
    .type("application/problem+json")
    .send(problem(status, code, detail, errors));
}

/** An `Expect` other than 100-continue (RFC 9110 §10.1.1), which Node answers before Fastify. */
export function expectationFailed(_request: IncomingMessage, response: ServerResponse): void {
  writeProblem(response, 417, "validation_failed", "Only `Expect: 100-continue` is supported");
}

/** A problem answered on a bare Node response (no Fastify reply), closing the connection. */
export function writeProblem(
  response: ServerResponse,
  status: number,
  code: string,
  detail: string,
  headers: ReadonlyArray<readonly [string, string]> = [],
): void {
  const body = JSON.stringify(problem(status, code, detail));
  for (const [name, value] of headers) response.setHeader(name, value);
  response.writeHead(status, {
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  response.end(body);
}

/**
 * A CONNECT request, which Node hands over as a bare socket and, with nobody listening,
 * drops without an answer: no route takes one, so 404 like any other method a path lacks.
 */
export function connectRefused(_request: IncomingMessage, socket: Duplex): void {
  endWithProblem(socket, 404, "not_found", "No route for CONNECT");
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (a garbled request line,
 * headers over the limit, a request that never finished arriving): the same problem+json
 * as every other error, then the connection closes, since its framing can't be trusted.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, detail] =
    error.code === "HPE_HEADER_OVERFLOW"
      ? [431, "payload_too_large", "The request headers are too large"]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "validation_failed", "The request did not arrive in time"]
        : [400, "validation_failed", "The request is not valid HTTP"];
  endWithProblem(socket, status, code, detail);
}

/**
 * A problem written as a whole HTTP/1.1 response straight to a socket that Node's HTTP
 * machinery has let go of (a request its parser refused, an upgrade), ending it: no
 * later request on that connection could be trusted or would be read.
 */
export function endWithProblem(
  socket: Duplex,
  status: number,
  code: string,
  detail: string,
  extra: { errors?: FieldError[]; headers?: Record<string, string> } = {},
): void {
  const body = JSON.stringify(problem(status, code, detail, extra.errors));
  const headers = {
    "Content-Type": "application/problem+json",
    "Content-Length": String(Buffer.byteLength(body)),
    Connection: "close",
    ...extra.headers,
  };
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 ${status} ${TITLES[status] ?? "Error"}\r\n${head.join("")}\r\n${body}`);
}

/** Every unmatched request, whichever Fastify instance it reached. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendProblem(
    reply,
    404,
    "not_found",
    `No route for ${request.method} ${request.url.split("?")[0]}`,
  );
}

/**
 * The one error handler: contract errors as they are, schema failures listed, no database
 * connection a 503, the rest a bare 500.
 */
export function errorHandler(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof AuthError) {
    if (error.extra.retryAfterSeconds) reply.header("retry-after", error.extra.retryAfterSeconds);
    return sendProblem(reply, error.status, error.code, error.detail, error.extra.errors);
  }
  if (error.validation) {
    const errors = error.validation.map((v) => ({
      path: fieldPath(v.instancePath, v.params),
      message: fieldMessage(v.keyword, v.message, v.params),
    }));
    const detail = `Invalid ${error.validationContext ?? "request"}: ${errors
      .map((e) => `${e.path || "(root)"} ${e.message}`)
      .join("; ")}`;
    return sendProblem(reply, 400, "validation_failed", detail, errors);
  }
  // Fastify closes the connection after a 413, mid-upload, and a client still sending
  // (fetch, a browser) then sees a broken pipe instead of the answer. Keeping it open lets
  // Node read the rest and throw it away (bounded by requestTimeout) while the 413 waits.
  if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") reply.removeHeader("connection");
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped || (error.statusCode && error.statusCode >= 400 && error.statusCode < 500)) {
    const status = (error.code && FASTIFY_STATUS[error.code]) || (error.statusCode ?? 400);
    const code = mapped ?? codeForStatus(status);
    return sendProblem(reply, status, code, clientMessage(error));
  }
  if (isForeignKeyViolation(error)) {
    return sendProblem(reply, 401, "user_not_found", "The account no longer exists");
  }
  // Every connection busy, or the database not answering: the request may succeed on a
  // retry, so the status says so (the same answer as a request met by a shutdown).
  if (error instanceof DatabaseUnavailableError) {
    request.log.warn({ err: error }, "no database connection");
    return sendProblem(
      reply,
      503,
      "service_unavailable",
      "The database is not available; retry the request",
    );
  }
  request.log.error({ err: error }, "unhandled error");
  return sendProblem(reply, 500, "internal_error", "An unexpected error occurred");
}

function fieldPath(instancePath: string, params: Record<string, unknown>): string {
  const base = instancePath.replace(/^\//, "").replaceAll("/", ".");
  const missing = params.missingProperty ?? params.additionalProperty;
  if (typeof missing === "string") return base ? `${base}.${missing}` : missing;
  return base;
}

function fieldMessage(
  keyword: string,
  message: string | undefined,
  params: Record<string, unknown>,
): string {
  if (keyword === "required") return "is required";
  if (keyword === "pattern" && params.pattern === TEXT_PATTERN)
    return "must not contain U+0000 or an unpaired surrogate";
  if (keyword === "additionalProperties") return "is not allowed";
  return message ?? "is invalid";
}

function codeForStatus(status: number): string {
  const match = Object.entries(ERROR_STATUS).find(([, s]) => s === status);
  return match ? match[0] : "validation_failed";
}

/** Fastify's messages for client errors are safe to show; they never hold internals. */
function clientMessage(error: FastifyError): string {
  if (error.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
    return "Content-Type must be application/json";
  // Fastify's message quotes the whole path back.
  if (error.code === "FST_ERR_MAX_PARAM_LENGTH") return "A path parameter is too long";
  if (error instanceof SyntaxError || error.code === "FST_ERR_CTP_INVALID_JSON_BODY") {
    return "The body is not valid JSON";
  }
  return error.message;
}
