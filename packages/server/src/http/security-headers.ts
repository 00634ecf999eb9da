import type { Config } from "../config/load.js";

/** One year, the usual HSTS lifetime (and what preload lists ask for). */
const HSTS_MAX_AGE_S = 31_536_000;

/**
 * Headers every answer carries, set once per request with the CORS headers (one hook).
 * `nosniff`: a browser never reads a JSON or problem+json answer as HTML or script,
 * whatever it reflects. HSTS when the public URL is https: the browser then never asks
 * this host over plain HTTP again, where the token cookies' requests could be stripped
 * (the Secure flag keeps cookies off plain HTTP, not the page that asks for them). Plain
 * HTTP answers would be ignored by browsers anyway (RFC 6797 §8.1), so none is sent on an
 * http:// deployment. No includeSubDomains: other hosts of the domain are not ours to pin.
 * The hosted pages and /docs add their own CSP and framing policy.
 */
export function securityHeaders(config: Pick<Config, "publicUrl">): Array<[string, string]> {
  const headers: Array<[string, string]> = [["x-content-type-options", "nosniff"]];
  if (new URL(config.publicUrl).protocol === "https:") {
    headers.push(["strict-transport-security", `max-age=${HSTS_MAX_AGE_S}`]);
  }
  return headers;
}
