import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { decodeJwt, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import Provider from "oidc-provider";

/** A user the scripted IdP knows. */
export interface IdpAccount {
  email?: string;
  emailVerified?: boolean;
}

/**
 * How the token endpoint's ID token is rewritten while set: its claims changed, and
 * signed by the provider's own key (as published in its JWKS) or by a key it never had.
 */
export interface IdTokenRewrite {
  claims?: (claims: JWTPayload) => JWTPayload;
  signer?: "provider" | "stranger";
}

export interface TestIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  accounts: Map<string, IdpAccount>;
  idTokenRewrite: IdTokenRewrite | undefined;
  close(): Promise<void>;
}

/**
 * A real OpenID Connect provider (oidc-provider) on loopback, whose login and consent
 * pages are JSON endpoints a test drives with real HTTP and cookies:
 *   GET  /interaction/:uid          -> { prompt: "login" | "consent" }
 *   POST /interaction/:uid/login    -> body `account=<sub>`; 303 back to the provider
 *   POST /interaction/:uid/confirm  -> grants what was asked; 303 back
 *   POST /interaction/:uid/abort    -> the user declines (access_denied); 303 back
 */
export async function startIdp(redirectUris: string[]): Promise<TestIdp> {
  const accounts = new Map<string, IdpAccount>();
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const stranger = (await generateKeyPair("RS256")).privateKey;
  const clientId = "latchkey";
  const clientSecret = "a-client-secret-of-some-length";
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: "RS256", use: "sig", kid: "k1" }] },
    claims: { openid: ["sub"], email: ["email", "email_verified"] },
    cookies: { keys: ["idp-cookie-signing-key"] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        claims: () => ({ sub, email: account.email, email_verified: account.emailVerified }),
      };
    },
  });
  // Its warnings about development defaults are noise here.
  provider.on("server_error", () => {});
  const callback = provider.callback();
  const idp: TestIdp = {
    issuer,
    clientId,
    clientSecret,
    accounts,
    idTokenRewrite: undefined,
    close: () => closeServer(server),
  };
  server.on("request", (req, res) => {
    const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm|abort))?/.exec(req.url ?? "");
    const rewrite = idp.idTokenRewrite;
    if (rewrite && req.url === "/token") {
      const key = rewrite.signer === "stranger" ? stranger : privateKey;
      rewriteTokenResponse(res, async (idToken) =>
        new SignJWT((rewrite.claims ?? ((c) => c))(decodeJwt(idToken)))
          .setProtectedHeader({ alg: "RS256", kid: "k1" })
          .sign(key),
      );
    }
    if (!match) return void callback(req, res);
    interaction(provider, req, res, match[2]).catch((err: unknown) => {
      res.statusCode = 500;
      res.end(String(err));
    });
  });
  return idp;
}

/** Replaces the `id_token` of the JSON body the provider ends `res` with. */
function rewriteTokenResponse(res: ServerResponse, replace: (idToken: string) => Promise<string>) {
  const end = res.end.bind(res) as (body?: unknown) => ServerResponse;
  res.end = ((body?: unknown) => {
    const parsed = JSON.parse(String(body)) as { id_token?: string };
    if (!parsed.id_token) return end(body);
    void replace(parsed.id_token).then((idToken) => {
      const text = JSON.stringify({ ...parsed, id_token: idToken });
      res.setHeader("content-length", Buffer.byteLength(text));
      end(text);
    });
    return res;
  }) as typeof res.end;
}

async function interaction(
  provider: Provider,
  req: IncomingMessage,
  res: ServerResponse,
  action: string | undefined,
): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (action === undefined) {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ prompt: details.prompt.name }));
    return;
  }
  if (action === "abort") {
    const result = { error: "access_denied", error_description: "The user declined" };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (action === "login") {
    const accountId = new URLSearchParams(await body(req)).get("account") ?? "";
    return provider.interactionFinished(req, res, { login: { accountId } });
  }
  const { params, session, grantId, prompt } = details;
  const grant =
    (grantId && (await provider.Grant.find(grantId))) ||
    new provider.Grant({ accountId: session?.accountId, clientId: params.client_id as string });
  const missing = prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  const consent = { grantId: await grant.save() };
  return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}

export const closeServer = (server: Server) =>
  new Promise<void>((resolve, reject) => {
    server.closeAllConnections();
    server.close((err) => (err ? reject(err) : resolve()));
  });
