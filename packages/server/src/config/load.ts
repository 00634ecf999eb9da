import { readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { join } from "node:path";
import proxyAddr from "@fastify/proxy-addr";
import { Value } from "@sinclair/typebox/value";
import { oauthConfigProblem } from "./oauth.js";
import { type ConfigInput, ConfigSchema, ENV } from "./schema.js";
import { type UnknownVariable, unknownVariables } from "./unknown-env.js";

export type Config = Readonly<
  Omit<
    ConfigInput,
    "publicUrl" | "databaseUrl" | "emailVerificationRequired" | "mail" | "webauthn" | "tokens"
  > & {
    publicUrl: string;
    databaseUrl: string;
    emailVerificationRequired: boolean;
    mail: ConfigInput["mail"] & { newSignInNotice: boolean; perIp: number };
    tokens: ConfigInput["tokens"] & { maxSessionDurationSeconds: number };
    /** `iss` of every token we sign. */
    issuer: string;
    webauthn: { rpId: string; rpName: string; origins: string[] };
    /**
     * LATCHKEY_* variables of the environment that name no setting: ignored, for whoever
     * starts the server to warn about (config has no logger).
     */
    unknownVariables: UnknownVariable[];
  }
>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Source = Record<string, unknown>;

/**
 * Reads the optional JSON file named by LATCHKEY_CONFIG, lays the environment over
 * it, applies defaults and validates once. Errors name the key the user set. Unknown
 * LATCHKEY_* variables are listed in `unknownVariables`, not refused.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<ConfigInput> = {},
): Config {
  const fromFile = env.LATCHKEY_CONFIG ? readConfigFile(env.LATCHKEY_CONFIG) : {};
  const merged: Source = structuredClone(fromFile);
  const origin = new Map<string, string>(); // config path -> env name, for messages
  for (const [name, path] of Object.entries(ENV)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    setPath(merged, path, parseEnvValue(name, path, raw));
    origin.set(path, name);
  }
  deepMerge(merged, overrides as Source);
  return resolve(validate(merged, origin), unknownVariables(env));
}

function readConfigFile(file: string): Source {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`LATCHKEY_CONFIG: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new Error("the top level must be an object");
    }
    return parsed as Source;
  } catch (err) {
    throw new ConfigError(`LATCHKEY_CONFIG: ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

const LIST_KEYS = new Set(["allowedOrigins", "trustProxy", "webauthn.origins"]);

/**
 * Environment strings become the schema's type here, strictly: a lenient conversion
 * (TypeBox Value.Convert) would turn "80.5" into port 80, "1e3" into 1 and "true" into 1.
 */
function parseEnvValue(name: string, path: string, raw: string): unknown {
  if (LIST_KEYS.has(path)) {
    return raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  }
  const type = schemaAt(path)?.type;
  const text = raw.trim();
  if (type === "integer") {
    // Beyond 2^53 "99999999999999999999" would silently become another number.
    if (!/^-?\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      throw new ConfigError(`Invalid configuration ${name}: Expected integer`);
    }
    return Number(text);
  }
  if (type === "boolean") {
    const flag = { true: true, "1": true, false: false, "0": false }[text.toLowerCase()];
    if (flag === undefined) {
      throw new ConfigError(`Invalid configuration ${name}: Expected boolean (true or false)`);
    }
    return flag;
  }
  return raw;
}

function schemaAt(path: string): { type?: unknown } | undefined {
  let node: unknown = ConfigSchema;
  for (const key of path.split(".")) {
    node = (node as { properties?: Record<string, unknown> }).properties?.[key];
    if (!node) return undefined;
  }
  return node as { type?: unknown };
}

function validate(input: Source, origin: Map<string, string>): ConfigInput {
  const unknown = unknownKeys(input);
  if (unknown.length > 0) {
    throw new ConfigError(`Unknown configuration key: ${unknown.join(", ")}`);
  }
  // No Value.Convert: environment values are already typed, and file values must be.
  // Cloned so that freezing the result never freezes the caller's overrides.
  const withDefaults = Value.Default(ConfigSchema, Value.Clone(input));
  const first = Value.Errors(ConfigSchema, withDefaults).First();
  if (first) {
    const path = first.path.replace(/^\//, "").replaceAll("/", ".");
    const key = origin.get(path) ?? path;
    throw new ConfigError(`Invalid configuration ${key}: ${first.message}`);
  }
  return withDefaults as ConfigInput;
}

/** `http://host:port`, an IPv6 host in brackets (RFC 3986 §3.2.2). */
export const httpUrl = (host: string, port: number) =>
  `http://${isIPv6(host) ? `[${host}]` : host}:${port}`;

function resolve(c: ConfigInput, unknown: UnknownVariable[]): Config {
  const publicUrl = (c.publicUrl ?? httpUrl(c.host, c.port)).replace(/\/+$/, "");
  if (!URL.canParse(publicUrl))
    throw new ConfigError(`Invalid configuration publicUrl: ${publicUrl}`);
  if (c.password.minLength > c.password.maxLength) {
    throw new ConfigError("Invalid configuration password.minLength: exceeds password.maxLength");
  }
  for (const origin of c.allowedOrigins) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      throw new ConfigError(
        `Invalid configuration allowedOrigins: ${origin} is not an origin (scheme://host[:port], no path or trailing slash)`,
      );
    }
  }
  for (const proxy of c.trustProxy) {
    const problem = proxyProblem(proxy);
    if (problem) throw new ConfigError(`Invalid configuration trustProxy: ${proxy} ${problem}`);
  }
  const cookieProblem = cookieDomainProblem(c.cookies.domain, new URL(publicUrl));
  if (cookieProblem) throw new ConfigError(`Invalid configuration ${cookieProblem}`);
  if (c.mail.transport === "http" && !(c.mail.http.apiKey && c.mail.http.apiSecret)) {
    throw new ConfigError(
      "Invalid configuration mail.http: the http transport needs apiKey and apiSecret",
    );
  }
  const oauthProblem = oauthConfigProblem(c);
  if (oauthProblem) throw new ConfigError(`Invalid configuration ${oauthProblem}`);
  const allowedOrigins =
    c.allowedOrigins.length > 0 ? c.allowedOrigins : defaultOrigins(publicUrl, c.mode);
  return deepFreeze({
    ...c,
    publicUrl,
    issuer: publicUrl,
    databaseUrl: c.databaseUrl ?? `sqlite:${join(c.dataDir, "latchkey.db")}`,
    emailVerificationRequired: c.emailVerificationRequired ?? c.mode === "production",
    mail: mailSettings(c.mail),
    tokens: {
      ...c.tokens,
      // The operator's own longest session: no user's setting outlives it by default.
      maxSessionDurationSeconds:
        c.tokens.maxSessionDurationSeconds ?? c.tokens.rememberMeTtlSeconds,
    },
    allowedOrigins,
    webauthn: relyingParty(c.webauthn, publicUrl),
    unknownVariables: unknown,
  });
}

/**
 * Checked with the parser the HTTP layer uses, which failed only `serve`, naming no key
 * ("invalid IP address"). It also refuses a /0 range, which would trust every address
 * to name the client, so any client could forge its IP.
 */
function proxyProblem(proxy: string): string | undefined {
  if (/\/0$/.test(proxy.trim())) return "trusts every address, so any client could forge its IP";
  try {
    proxyAddr.compile(proxy);
    return undefined;
  } catch {
    return "is not an IP address or CIDR range";
  }
}

const HOSTNAME =
  /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * A cookie Domain browsers would silently refuse, so that no sign-in keeps its cookies: one
 * that is not a host name (a URL, a port) or that the server's own host is not on
 * (RFC 6265 §5.3 step 6).
 */
function cookieDomainProblem(cookieDomain: string | undefined, publicUrl: URL): string | undefined {
  if (cookieDomain === undefined) return undefined;
  const domain = cookieDomain.replace(/^\./, "").toLowerCase();
  if (!HOSTNAME.test(domain)) {
    return `cookies.domain: ${cookieDomain} is not a domain name (example.com: no scheme, port or path)`;
  }
  const host = publicUrl.hostname.toLowerCase();
  if (host !== domain && !host.endsWith(`.${domain}`)) {
    return `cookies.domain: ${cookieDomain} does not cover the publicUrl host ${host}; browsers would refuse the cookies`;
  }
  return undefined;
}

/**
 * The outbox sends nothing, so nothing there needs a new-sign-in notice or a per-IP budget
 * against using this server to mail strangers (the per-address budgets still apply).
 */
function mailSettings(mail: ConfigInput["mail"]): Config["mail"] {
  const outbox = mail.transport === "outbox";
  return {
    ...mail,
    newSignInNotice: mail.newSignInNotice ?? !outbox,
    perIp: mail.perIp ?? (outbox ? 10_000 : 100),
  };
}

/**
 * WebAuthn §5.1.4.1 / §13.4.9: the RP ID must be each origin's host or a registrable
 * suffix of it, or browsers refuse the ceremony; caught here rather than at the first sign-in.
 */
function relyingParty(w: ConfigInput["webauthn"], publicUrl: string): Config["webauthn"] {
  const rpId = (w.rpId ?? new URL(publicUrl).hostname).toLowerCase();
  const origins = w.origins.length > 0 ? w.origins : [new URL(publicUrl).origin];
  for (const origin of origins) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      throw new ConfigError(`Invalid configuration webauthn.origins: ${origin} is not an origin`);
    }
    const host = new URL(origin).hostname;
    if (host !== rpId && !host.endsWith(`.${rpId}`)) {
      throw new ConfigError(
        `Invalid configuration webauthn.rpId: ${rpId} is not ${host} or a parent domain of it`,
      );
    }
  }
  return { rpId, rpName: w.rpName, origins };
}

/** The server's own origin; in development also its loopback twin (localhost <-> 127.0.0.1). */
function defaultOrigins(publicUrl: string, mode: ConfigInput["mode"]): string[] {
  const url = new URL(publicUrl);
  const origins = [url.origin];
  if (mode === "development") {
    const twin = { localhost: "127.0.0.1", "127.0.0.1": "localhost" }[url.hostname];
    if (twin) origins.push(`${url.protocol}//${twin}${url.port ? `:${url.port}` : ""}`);
  }
  return origins;
}

function unknownKeys(input: Source, schema = ConfigSchema as unknown, prefix = ""): string[] {
  const props = (schema as { properties?: Record<string, unknown> }).properties;
  if (!props) return [];
  return Object.entries(input).flatMap(([k, v]) => {
    const path = prefix + k;
    // Own keys only: `in` also finds what every object inherits (constructor, toString).
    if (!Object.hasOwn(props, k)) return [path];
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return unknownKeys(v as Source, props[k], `${path}.`);
    }
    return [];
  });
}

function setPath(target: Source, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Source;
  }
  node[keys[keys.length - 1] as string] = value;
}

function deepMerge(target: Source, source: Source): void {
  for (const [key, value] of Object.entries(source)) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      if (typeof target[key] !== "object" || target[key] === null) target[key] = {};
      deepMerge(target[key] as Source, value as Source);
    } else if (value !== undefined) {
      target[key] = value;
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
