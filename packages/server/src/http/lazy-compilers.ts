// Fastify's own dependencies, the compilers it would build itself (imported statically so
// a bundler can inline them; see the README on functions).
import ajvCompiler from "@fastify/ajv-compiler";
import { SerializerSelector } from "@fastify/fast-json-stringify-compiler";
import type { FastifyServerOptions } from "fastify";

type Compiled = ((...args: unknown[]) => unknown) & { errors?: unknown };
type Compiler = (route: unknown) => Compiled;
type CompilerFactory = (externalSchemas: unknown, options: unknown) => Compiler;

/**
 * Fastify's own schema compilers (Ajv for requests, fast-json-stringify for responses),
 * each route's compiled on its first request instead of at start. Compiling all of them
 * was a third of the time from a fresh process to the first answer (bench/RESULTS.md,
 * cold start); a route now pays its own 1-3 ms once. Schemas stay Fastify's to validate.
 * Fastify treats these as custom compilers; that only stops it lower-casing `headers`
 * schemas, which no route declares.
 */
type CompilersFactory = NonNullable<FastifyServerOptions["schemaController"]>["compilersFactory"];

export function lazyCompilers(): CompilersFactory {
  // Typed loosely: Ajv's function type lists properties a deferred one only forwards.
  return {
    buildValidator: deferred(ajvCompiler() as unknown as CompilerFactory),
    buildSerializer: deferred(SerializerSelector() as unknown as CompilerFactory),
  } as unknown as CompilersFactory;
}

function deferred(factory: CompilerFactory): CompilerFactory {
  return (externalSchemas, options) => {
    let compiler: Compiler | undefined;
    return (route) => {
      let compiled: Compiled | undefined;
      const compile = () => {
        compiler ??= factory(externalSchemas, options);
        compiled ??= compiler(route);
        return compiled;
      };
      const run = (...args: unknown[]) => compile()(...args);
      // Fastify reads these off an Ajv function: `schemaEnv` before the call (it then
      // passes the parent, so Ajv may replace a root value), `errors` after a failure.
      return Object.defineProperties(run, {
        schemaEnv: { get: () => (compile() as { schemaEnv?: unknown }).schemaEnv },
        errors: { get: () => compiled?.errors },
      }) as Compiled;
    };
  };
}
