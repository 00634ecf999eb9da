import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { closeServer } from "./idp.js";

export interface GithubUser {
  /** A number at GitHub; a string at some GitHub-style providers. */
  id: number | string;
  login: string;
  /** The public profile email (nothing vouches for it). */
  email: string | null;
  emails: Array<{ email: string; primary: boolean; verified: boolean }>;
}

export interface FakeGithub {
  origin: string;
  clientId: string;
  clientSecret: string;
  /** Who "is signed in" at the provider: the next authorization approves as this user. */
  signedIn: GithubUser | undefined;
  /** Access tokens the token endpoint issued. */
  issued: string[];
  close(): Promise<void>;
}

interface Grant {
  user: GithubUser;
  challenge: string;
  redirectUri: string;
}

/**
 * A GitHub-shaped OAuth 2.0 server on loopback: /login/oauth/authorize approves at
 * once as `signedIn` (or answers access_denied when nobody is), /login/oauth/access_token
 * checks the client secret, the redirect URI and PKCE (S256) and answers JSON,
 * /user and /user/emails want the Bearer token. Codes work once.
 */
export async function startFakeGithub(): Promise<FakeGithub> {
  const codes = new Map<string, Grant>();
  const tokens = new Map<string, GithubUser>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { error: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const gh: FakeGithub = {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientId: "gh-client",
    clientSecret: "gh-secret-value",
    signedIn: undefined,
    issued: [],
    close: () => closeServer(server),
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", gh.origin);
    if (url.pathname === "/login/oauth/authorize") return authorize(url, res);
    if (url.pathname === "/login/oauth/access_token" && req.method === "POST") {
      return token(new URLSearchParams(await body(req)), req, res);
    }
    const user = tokens.get((req.headers.authorization ?? "").replace(/^Bearer /i, ""));
    if (!user) return send(res, 401, { message: "Requires authentication" });
    if (url.pathname === "/user")
      return send(res, 200, { id: user.id, login: user.login, email: user.email });
    if (url.pathname === "/user/emails") return send(res, 200, user.emails);
    return send(res, 404, { message: "Not Found" });
  }

  function authorize(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    const redirect = new URL(q.get("redirect_uri") ?? "");
    redirect.searchParams.set("state", q.get("state") ?? "");
    if (q.get("client_id") !== gh.clientId || q.get("code_challenge_method") !== "S256") {
      redirect.searchParams.set("error", "invalid_request");
    } else if (!gh.signedIn) {
      redirect.searchParams.set("error", "access_denied");
    } else {
      const code = randomBytes(10).toString("hex");
      codes.set(code, {
        user: gh.signedIn,
        challenge: q.get("code_challenge") ?? "",
        redirectUri: q.get("redirect_uri") ?? "",
      });
      redirect.searchParams.set("code", code);
    }
    res.writeHead(302, { location: redirect.href }).end();
  }

  function token(form: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    // GitHub answers form-encoded unless asked for JSON.
    if (!(req.headers.accept ?? "").includes("application/json")) {
      send(res, 406, {});
      return;
    }
    const grant = codes.get(form.get("code") ?? "");
    codes.delete(form.get("code") ?? "");
    const verifier = form.get("code_verifier") ?? "";
    const challenge = createHash("sha256").update(verifier).digest("base64url");
    const ok =
      grant &&
      form.get("client_id") === gh.clientId &&
      form.get("client_secret") === gh.clientSecret &&
      form.get("redirect_uri") === grant.redirectUri &&
      challenge === grant.challenge;
    if (!ok) {
      send(res, 400, { error: "bad_verification_code" });
      return;
    }
    const accessToken = `gho_${randomBytes(16).toString("hex")}`;
    tokens.set(accessToken, grant.user);
    gh.issued.push(accessToken);
    send(res, 200, {
      access_token: accessToken,
      token_type: "bearer",
      scope: "read:user,user:email",
    });
  }

  return gh;
}

function send(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
}

async function body(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}
