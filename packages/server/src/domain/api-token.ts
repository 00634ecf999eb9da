import { randomToken } from "./crypto.js";
import { AuthError } from "./errors.js";

/**
 * What a route that accepts API tokens requires: `<resource>:<action>`, or `introspect`.
 * A route that names none refuses API tokens altogether (token management, MFA, step-up,
 * logout).
 */
export const API_TOKEN_SCOPES = [
  "profile:read",
  "sessions:read",
  "sessions:write",
  /** POST /auth/introspect: for a service that checks other users' access tokens. */
  "introspect",
] as const;
export type Scope = (typeof API_TOKEN_SCOPES)[number];

type ResourceOf<S> = S extends `${infer R}:${string}` ? R : never;
type ActionOf<S> = S extends `${string}:${infer A}` ? A : never;
/** Everything an API token can do, introspection included. */
export const ALL_SCOPES = "*";
/**
 * What a token may carry: a route scope itself, a bare resource (`sessions`: every action
 * on it), a bare action (`read`: that action on every resource) or `*`. `introspect` is
 * no resource and has no action, so only itself and `*` grant it.
 */
export type ScopeGrant = Scope | ResourceOf<Scope> | ActionOf<Scope> | typeof ALL_SCOPES;

const split = (scope: Scope): { resource: string; action: string } | undefined => {
  const colon = scope.indexOf(":");
  return colon < 0
    ? undefined
    : { resource: scope.slice(0, colon), action: scope.slice(colon + 1) };
};
const distinct = <T>(values: T[]): T[] => [...new Set(values)];
const RESOURCE_SCOPES = API_TOKEN_SCOPES.filter((s) => split(s) !== undefined);
const RESOURCES = distinct(RESOURCE_SCOPES.map((s) => split(s)?.resource)) as ScopeGrant[];
const ACTIONS = distinct(RESOURCE_SCOPES.map((s) => split(s)?.action)) as ScopeGrant[];

/** Every accepted value of `scopes`, most specific first. */
export const SCOPE_GRANTS: readonly ScopeGrant[] = [
  ...API_TOKEN_SCOPES,
  ...RESOURCES,
  ...ACTIONS,
  ALL_SCOPES,
];

export const isScopeGrant = (name: unknown): name is ScopeGrant =>
  SCOPE_GRANTS.includes(name as ScopeGrant);

/** The grants that cover `required`, e.g. `sessions:read`, `sessions`, `read`, `*`. */
export function grantsCovering(required: Scope): ScopeGrant[] {
  const parts = split(required);
  return [required, ...(parts ? [parts.resource, parts.action] : []), ALL_SCOPES] as ScopeGrant[];
}

/**
 * The one scope check: does a token carrying `granted` pass a route that requires
 * `required`? Names that are not grants (typos, or from a newer version) grant nothing.
 */
export const scopesGrant = (granted: readonly string[], required: Scope): boolean => {
  const covering: readonly string[] = grantsCovering(required);
  return granted.some((name) => covering.includes(name));
};

/** The accepted forms, for error messages and documentation. */
export const SCOPE_FORMS =
  `a scope is \`resource:action\` (${RESOURCE_SCOPES.join(", ")}), a resource for all of ` +
  `its actions (${RESOURCES.join(", ")}), an action on every resource (${ACTIONS.join(", ")}), ` +
  `\`introspect\`, or \`*\` for everything (introspect included)`;

/**
 * The scopes of a new token, as given (duplicates dropped): at least one, each an accepted
 * form. Anything else is 400 `validation_failed` naming the accepted forms, so a typo
 * never silently makes a token that can do less (or more) than meant.
 */
export function parseScopes(names: readonly string[]): ScopeGrant[] {
  if (names.length === 0) {
    const message = `must name at least one scope; ${SCOPE_FORMS}`;
    throw new AuthError("validation_failed", `Invalid body: scopes ${message}`, {
      errors: [{ path: "scopes", message }],
    });
  }
  const errors = names.flatMap((name, i) =>
    isScopeGrant(name)
      ? []
      : [
          {
            path: `scopes.${i}`,
            message: `${JSON.stringify(name)} is not a scope; ${SCOPE_FORMS}`,
          },
        ],
  );
  if (errors.length > 0) {
    const detail = `Invalid body: ${errors.map((e) => `${e.path} ${e.message}`).join("; ")}`;
    throw new AuthError("validation_failed", detail, { errors });
  }
  return distinct(names as ScopeGrant[]);
}

/** Every API token starts with this, which is how the guard tells one from a JWT. */
export const API_TOKEN_PREFIX = "lk_";
/** Characters after `lk_` kept in clear so users can tell their tokens apart. */
export const DISPLAY_PREFIX_LENGTH = 8;
export const API_TOKEN_NAME_MAX_LENGTH = 100;
export const API_TOKEN_MAX_DAYS = 3650;
const DAY_MS = 86_400_000;

/** lastUsedAt is written at most this often per token, so uses never turn into writes. */
export const LAST_USED_WRITE_INTERVAL_MS = 60_000;

/** An API token as stored: never the secret, only its hash. Times are epoch milliseconds. */
export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  tokenHash: string;
  /** As given at creation; see scopesGrant for what they allow. */
  scopes: ScopeGrant[];
  expiresAt: number | null;
  lastUsedAt: number | null;
  createdAt: number;
}

/** A new secret: `lk_` and 256 random bits (ASVS V3.2.2), and the part shown for display. */
export function generateApiToken(): { token: string; prefix: string } {
  const secret = randomToken(32);
  return {
    token: `${API_TOKEN_PREFIX}${secret}`,
    prefix: secret.slice(0, DISPLAY_PREFIX_LENGTH),
  };
}

export const isApiToken = (token: string) => token.startsWith(API_TOKEN_PREFIX);

export const apiTokenExpiry = (now: number, expiresInDays: number | undefined) =>
  expiresInDays === undefined ? null : now + expiresInDays * DAY_MS;

export const isExpired = (token: Pick<ApiToken, "expiresAt">, now: number) =>
  token.expiresAt !== null && token.expiresAt <= now;

/** Scopes read back from storage: unknown names (from a newer version) grant nothing. */
export const knownScopes = (names: unknown[]): ScopeGrant[] => names.filter(isScopeGrant);
