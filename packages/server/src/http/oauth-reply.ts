import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/load.js";
import type { CallbackResult } from "../flows/oauth/callback.js";
import { setMfaCookie, setTokenCookies } from "./cookies.js";

/** Where the browser goes after the callback when /start named no `redirect`. */
export const DEFAULT_REDIRECT = "/ui/";

/** `target` with the given query parameters added (an absolute URL). */
export function withParams(target: URL, params: Record<string, string>): string {
  const url = new URL(target);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return url.href;
}

/**
 * Sends the browser on after a callback: with session cookies; with the lk_mfa cookie
 * and `mfaRequired=true`; with a one-time `code` (`body` delivery); or with
 * `linked=<provider>` after linking.
 */
export function redirectAfterCallback(
  reply: FastifyReply,
  config: Config,
  target: URL,
  result: CallbackResult,
): FastifyReply {
  switch (result.kind) {
    case "tokens":
      setTokenCookies(reply, config, result.tokens);
      return reply.redirect(target.href, 302);
    case "mfa_required":
      if (config.tokens.delivery !== "body") {
        setMfaCookie(reply, config, result.mfaToken, result.expiresIn);
      }
      return reply.redirect(withParams(target, { mfaRequired: "true" }), 302);
    case "code":
      return reply.redirect(withParams(target, { code: result.code }), 302);
    case "linked":
      return reply.redirect(withParams(target, { linked: result.provider }), 302);
  }
}

/** The URL the provider sent the browser to, on the redirect URI it knows (publicUrl based). */
export function callbackUrl(redirectUri: string, request: FastifyRequest): URL {
  const query = request.url.indexOf("?");
  return new URL(redirectUri + (query === -1 ? "" : request.url.slice(query)));
}

/** A script asking for the URL (`Accept: application/json`) rather than a browser navigating. */
export const wantsJson = (request: FastifyRequest) => {
  const accept = request.headers.accept ?? "";
  return accept.includes("application/json") && !accept.includes("text/html");
};
