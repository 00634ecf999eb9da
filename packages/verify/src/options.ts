/** How a service verifies Latchkey access tokens. */
export interface VerifierOptions {
  /** Latchkey's public URL: the `iss` of its tokens and the base of the default URLs below. */
  issuer: string;
  /** Expected `aud`; Latchkey's default is "latchkey". */
  audience?: string;
  /** Default `<issuer>/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Accepted `alg` values, default ["EdDSA"]; asymmetric only, since keys come from a JWKS. */
  algorithms?: string[];
  /**
   * Latchkey's `LATCHKEY_JWT_SECRET`, when it signs HS256 instead of EdDSA: tokens are then
   * verified with it, HS256 only, and no JWKS is fetched. Not with `jwksUrl` or `algorithms`.
   */
  secret?: string;
  /** Leeway for `exp`/`nbf` between clocks, default 5 s, at most 300 (Latchkey's own ceiling). */
  clockToleranceSeconds?: number;
  /**
   * After a JWKS fetch, successful or not, an unknown `kid` (or a failed fetch) triggers the
   * next fetch only this much later (default 5 s): a flood of forged kids costs Latchkey one
   * request per period, even while its JWKS answers errors. At most 30: a token signed by a
   * key just rotated in waits up to this long for the fetch that brings the key.
   */
  jwksCooldownSeconds?: number;
  /** Ask Latchkey whether each token is still active (revocation, lock, disabled account). */
  introspection?: {
    /** An API token with the `introspect` scope. */
    apiToken: string;
    /** Default `<issuer>/auth/introspect`. */
    url?: string;
    /** How long an answer is reused, default 5 s: the longest a revocation can go unseen. */
    cacheSeconds?: number;
  };
  /** Time source in epoch ms (tests); default Date.now. */
  clock?: { now(): number };
}

export interface ResolvedOptions {
  issuer: string;
  audience: string;
  /** Where the keys come from: the JWKS, or the shared secret (HS256). */
  keys: { jwksUrl: URL } | { secret: string };
  algorithms: string[];
  clockToleranceSeconds: number;
  jwksCooldownSeconds: number;
  introspection: { apiToken: string; url: URL; cacheSeconds: number } | undefined;
  clock: { now(): number };
}

/** Latchkey's own ceiling (tokens.clockToleranceSeconds): more would stretch a 15-minute token. */
const MAX_CLOCK_TOLERANCE_S = 300;
/** A request waits at most this long for the JWKS fetch that brings a newly rotated key. */
const MAX_JWKS_COOLDOWN_S = 30;
const ASYMMETRIC = /^(EdDSA|Ed25519|ES(256|384|512)|RS(256|384|512)|PS(256|384|512))$/;
const fail = (message: string): never => {
  throw new TypeError(`@latchkey/verify: ${message}`);
};

/** Options are checked once, when the verifier is made; a mistake here is a programmer error. */
export function resolveOptions(options: VerifierOptions): ResolvedOptions {
  const issuer = options.issuer;
  if (typeof issuer !== "string" || !URL.canParse(issuer)) fail("`issuer` must be a URL");
  // Latchkey drops a trailing slash from its publicUrl before using it as `iss`; the same
  // value passed here must match, not refuse every token.
  const base = issuer.replace(/\/+$/, "");
  const { secret } = options;
  if (secret !== undefined) {
    // As the server requires of it (RFC 7518 §3.2 wants 256 bits of key).
    if (typeof secret !== "string" || secret.length < 32) fail("`secret` must be 32+ characters");
    if (options.jwksUrl !== undefined || options.algorithms !== undefined) {
      fail("`secret` verifies HS256 alone: leave out `jwksUrl` and `algorithms`");
    }
  }
  const algorithms = secret === undefined ? (options.algorithms ?? ["EdDSA"]) : ["HS256"];
  if (algorithms.length === 0) fail("`algorithms` must name at least one algorithm");
  for (const alg of secret === undefined ? algorithms : []) {
    if (!ASYMMETRIC.test(alg)) fail(`\`algorithms\`: ${alg} cannot be verified from a JWKS`);
  }
  const intro = options.introspection;
  if (intro && !intro.apiToken?.startsWith("lk_")) {
    fail("`introspection.apiToken` must be a Latchkey API token (lk_…)");
  }
  return {
    issuer: base,
    audience: options.audience ?? "latchkey",
    keys:
      secret === undefined
        ? { jwksUrl: url(options.jwksUrl ?? `${base}/.well-known/jwks.json`, "jwksUrl") }
        : { secret },
    algorithms,
    clockToleranceSeconds: seconds(
      options.clockToleranceSeconds,
      5,
      MAX_CLOCK_TOLERANCE_S,
      "clockToleranceSeconds",
    ),
    jwksCooldownSeconds: seconds(
      options.jwksCooldownSeconds,
      5,
      MAX_JWKS_COOLDOWN_S,
      "jwksCooldownSeconds",
    ),
    introspection: intro && {
      apiToken: intro.apiToken,
      url: url(intro.url ?? `${base}/auth/introspect`, "introspection.url"),
      cacheSeconds: seconds(intro.cacheSeconds, 5, undefined, "introspection.cacheSeconds"),
    },
    clock: options.clock ?? { now: () => Date.now() },
  };
}

function url(value: string, name: string): URL {
  if (!URL.canParse(value)) fail(`\`${name}\` must be a URL`);
  return new URL(value);
}

function seconds(
  value: number | undefined,
  fallback: number,
  max: number | undefined,
  name: string,
): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) fail(`\`${name}\` must be a number >= 0`);
  if (max !== undefined && value > max) fail(`\`${name}\` must be at most ${max}`);
  return value;
}
