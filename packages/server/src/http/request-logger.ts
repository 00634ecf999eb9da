import type { FastifyBaseLogger, FastifyRequest } from "fastify";

type Bindings = Parameters<FastifyBaseLogger["child"]>[0];
type ChildOptions = Parameters<FastifyBaseLogger["child"]>[1];
type Level = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
type Forward = (...args: unknown[]) => void;

/**
 * A request's logger (`request.log`), made the first time something logs through it.
 * Fastify gives every request a child of the root logger bound to its id, and pino
 * builds a child by rebuilding each level method on a new object and serialising the
 * bindings. A request that goes well logs only its request line, which app.ts writes
 * through the root logger with the id in it, so most requests never need the child.
 */
class LazyRequestLogger {
  #child: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildOptions,
  ) {}

  private get log(): FastifyBaseLogger {
    this.#child ??= this.parent.child(this.bindings, this.options);
    return this.#child;
  }

  private forward(level: Level, args: unknown[]): void {
    (this.log[level] as Forward)(...args);
  }

  get level(): string {
    return this.log.level;
  }

  set level(level: string) {
    this.log.level = level;
  }

  fatal(...args: unknown[]): void {
    this.forward("fatal", args);
  }

  error(...args: unknown[]): void {
    this.forward("error", args);
  }

  warn(...args: unknown[]): void {
    this.forward("warn", args);
  }

  info(...args: unknown[]): void {
    this.forward("info", args);
  }

  debug(...args: unknown[]): void {
    this.forward("debug", args);
  }

  trace(...args: unknown[]): void {
    this.forward("trace", args);
  }

  silent(...args: unknown[]): void {
    this.forward("silent", args);
  }

  child(bindings: Bindings, options?: ChildOptions): FastifyBaseLogger {
    return this.log.child(bindings, options);
  }
}

/** Fastify's `childLoggerFactory`. */
export const lazyRequestLogger = (
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildOptions,
): FastifyBaseLogger => new LazyRequestLogger(logger, bindings, options);

/**
 * The one line every request writes when it ends (README "Logs"), through the root
 * logger with the request's id in it. The path only: queries may carry one-time codes.
 * `ip` for a request whose connection may be gone (its address goes with it).
 */
export function logRequest(
  log: FastifyBaseLogger,
  request: Pick<FastifyRequest, "id" | "method" | "url" | "ip">,
  status: number,
  elapsedMs: number,
  ip = request.ip,
): void {
  log.info(
    {
      reqId: request.id,
      method: request.method,
      path: request.url.split("?")[0],
      status,
      ms: Math.round(elapsedMs * 10) / 10,
      ip,
    },
    "request",
  );
}
