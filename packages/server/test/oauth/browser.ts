import type { TestApp } from "../helpers.js";

export const APP_ORIGIN = "http://latchkey.test";
export const USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 TestBrowser";

interface StoredCookie {
  value: string;
  path: string;
}

export interface Page {
  url: URL;
  status: number;
  /** Absolute, when the answer is a redirect. */
  location: URL | undefined;
  body: string;
  /** The raw Set-Cookie lines of this answer. */
  setCookies: string[];
  json<T = Record<string, unknown>>(): T;
}

/**
 * A browser without a screen: a cookie jar per host (Path honoured, expiry by
 * Max-Age/Expires), and GET/POST with manual redirects. Requests to the app's origin
 * go to `app.http.inject`, everything else over real HTTP with fetch.
 */
export class Browser {
  private readonly jar = new Map<string, Map<string, StoredCookie>>();

  constructor(private readonly app: TestApp) {}

  cookie(host: string, name: string): string | undefined {
    return this.jar.get(host)?.get(name)?.value;
  }

  setCookie(host: string, name: string, value: string, path = "/"): void {
    this.hostJar(host).set(name, { value, path });
  }

  get(url: string | URL): Promise<Page> {
    return this.request("GET", new URL(url));
  }

  post(url: string | URL, form: Record<string, string> = {}): Promise<Page> {
    return this.request("POST", new URL(url), new URLSearchParams(form).toString());
  }

  /** Follows redirects from `url` while `more(next)` says so; the last page reached. */
  async follow(url: string | URL, more: (next: URL) => boolean): Promise<Page> {
    let page = await this.get(url);
    for (let hops = 0; page.location && more(page.location); hops++) {
      if (hops > 20) throw new Error("too many redirects");
      page = await this.get(page.location);
    }
    return page;
  }

  private async request(method: string, url: URL, form?: string): Promise<Page> {
    const headers: Record<string, string> = {
      "user-agent": USER_AGENT,
      accept: "text/html,application/xhtml+xml",
      ...(form === undefined ? {} : { "content-type": "application/x-www-form-urlencoded" }),
    };
    const cookies = this.cookieHeader(url);
    if (cookies) headers.cookie = cookies;
    let status: number;
    let setCookies: string[];
    let location: string | undefined;
    let body: string;
    if (url.origin === APP_ORIGIN) {
      const res = await this.app.http.inject({
        method: method as "GET" | "POST",
        url: url.pathname + url.search,
        headers,
        ...(form === undefined ? {} : { payload: form }),
      });
      status = res.statusCode;
      const raw = res.headers["set-cookie"];
      setCookies = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
      location = res.headers.location as string | undefined;
      body = res.body;
    } else {
      const res = await fetch(url, { method, headers, body: form, redirect: "manual" });
      status = res.status;
      setCookies = res.headers.getSetCookie();
      location = res.headers.get("location") ?? undefined;
      body = await res.text();
    }
    for (const line of setCookies) this.store(url, line);
    return {
      url,
      status,
      location: location === undefined ? undefined : new URL(location, url),
      body,
      setCookies,
      json: <T>() => JSON.parse(body) as T,
    };
  }

  private hostJar(host: string): Map<string, StoredCookie> {
    let cookies = this.jar.get(host);
    if (!cookies) {
      cookies = new Map();
      this.jar.set(host, cookies);
    }
    return cookies;
  }

  private cookieHeader(url: URL): string {
    const cookies = this.jar.get(url.host);
    if (!cookies) return "";
    return [...cookies]
      .filter(([, c]) => url.pathname.startsWith(c.path))
      .map(([name, c]) => `${name}=${c.value}`)
      .join("; ");
  }

  private store(url: URL, line: string): void {
    const [pair = "", ...attributes] = line.split(";").map((part) => part.trim());
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    let path = "/";
    let expired = value === "";
    for (const attribute of attributes) {
      const [key = "", val = ""] = attribute.split("=");
      const k = key.toLowerCase();
      if (k === "path") path = val;
      if (k === "max-age" && Number(val) <= 0) expired = true;
      if (k === "expires" && Date.parse(val) < Date.now()) expired = true;
    }
    if (expired) this.jar.get(url.host)?.delete(name);
    else this.hostJar(url.host).set(name, { value, path });
  }
}
