/**
 * What a browser does for cookie mode, reduced to what Latchkey's cookies use: keeps
 * Set-Cookie values by name and Path, sends the matching ones back, honours Max-Age=0
 * deletions, and stamps the page's Origin on every non-GET request as browsers do
 * (Fetch §3.1). Node's fetch has no cookie jar, so the cookie-mode tests go through this.
 */
export class CookieJar {
  readonly #cookies = new Map<string, { value: string; path: string }>();
  /** Calls that reached the server, by path, for counting refreshes. */
  readonly calls: string[] = [];
  /** Awaited before a response's cookies are kept: a test holds one back so it lands late. */
  beforeStore: ((path: string) => Promise<void>) | undefined;

  constructor(readonly origin: string) {}

  readonly fetch: typeof fetch = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const headers = new Headers(init.headers);
    const method = (init.method ?? "GET").toUpperCase();
    if (init.credentials === "include") {
      const cookie = this.header(url);
      if (cookie) headers.set("cookie", cookie);
    }
    if (method !== "GET" && method !== "HEAD") headers.set("origin", this.origin);
    this.calls.push(url.pathname);
    const res = await fetch(url, { ...init, headers });
    await this.beforeStore?.(url.pathname);
    if (init.credentials === "include") this.#store(res.headers.getSetCookie());
    return res;
  };

  has(name: string): boolean {
    return this.#cookies.has(name);
  }

  /** The Cookie header a request to `url` carries (a WebSocket handshake's too). */
  header(url: URL): string {
    return [...this.#cookies]
      .filter(
        ([, c]) =>
          url.pathname === c.path || url.pathname.startsWith(`${c.path}/`) || c.path === "/",
      )
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
  }

  /** A cookie whose Max-Age ran out: the browser no longer sends it. */
  drop(name: string): void {
    this.#cookies.delete(name);
  }

  #store(setCookies: string[]): void {
    for (const line of setCookies) {
      const [pair = "", ...attributes] = line.split(";").map((s) => s.trim());
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = (key: string) =>
        attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.split("=")[1];
      const path = attr("path") ?? "/";
      if (attr("max-age") === "0" || value === "" || /expires=thu, 01 jan 1970/i.test(line)) {
        this.#cookies.delete(name);
      } else {
        this.#cookies.set(name, { value, path });
      }
    }
  }
}
