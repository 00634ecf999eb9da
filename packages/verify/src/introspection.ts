import { VerifyError } from "./errors.js";

const MAX_ENTRIES = 10_000;
const TIMEOUT_MS = 5_000;

interface Entry {
  active: boolean;
  until: number;
}

/**
 * POST /auth/introspect with a short cache keyed by `jti` (never the token itself).
 * A failed call refuses the token: a revocation check that cannot run is not passed.
 * Concurrent checks of one token share one call: a page's burst of requests with a
 * fresh token must not become as many calls to Latchkey.
 */
export class Introspector {
  private readonly cache = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<boolean>>();

  constructor(
    private readonly url: URL,
    private readonly apiToken: string,
    private readonly cacheMs: number,
    private readonly clock: { now(): number },
  ) {}

  async isActive(token: string, jti: string, expMs: number): Promise<boolean> {
    const now = this.clock.now();
    const cached = this.cache.get(jti);
    if (cached && cached.until > now) return cached.active;
    let answer = this.pending.get(jti);
    if (!answer) {
      answer = this.ask(token)
        .then((active) => {
          this.remember(jti, { active, until: Math.min(now + this.cacheMs, expMs) });
          return active;
        })
        .finally(() => this.pending.delete(jti));
      this.pending.set(jti, answer);
    }
    return answer;
  }

  private async ask(token: string): Promise<boolean> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${this.apiToken}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ token }),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch {
      throw new VerifyError("unavailable", "Latchkey introspection could not be reached");
    }
    if (res.status !== 200) {
      throw new VerifyError("unavailable", `Latchkey introspection answered ${res.status}`);
    }
    const body = (await res.json().catch(() => undefined)) as { active?: unknown } | undefined;
    return body?.active === true;
  }

  private remember(jti: string, entry: Entry): void {
    if (this.cache.size >= MAX_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(jti, entry);
  }
}
