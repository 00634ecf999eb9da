import type { JWK } from "jose";
import type { RevocationBus } from "../cache/revocation-bus.js";
import type { Clock } from "../domain/clock.js";
import { type GeneratedKey, generateEd25519, type JwtKey, Keyring } from "../domain/keyring.js";
import { PURPOSE_TTL_S } from "../domain/purpose-token.js";
import type { SecretBox } from "../domain/secret-box.js";
import type { Store } from "../store/index.js";

/** How often a node re-reads keys anyway (retired keys drop out once expired). */
export const KEY_RELOAD_INTERVAL_MS = 60_000;
/**
 * How often a node asks which key is active, so a rotation it was not told of (by the
 * CLI on a node without Redis) signs within seconds; one read of a table of a few rows.
 */
export const KEY_CHECK_INTERVAL_MS = 5_000;
/** An unknown `kid` may trigger a reload at most this often (a flood of forged kids costs one query a second). */
const UNKNOWN_KID_RELOAD_MS = 1_000;

export interface KeySettings {
  jwtSecret: string | undefined;
  accessTtlSeconds: number;
  clockToleranceSeconds: number;
}

/**
 * Owns this node's keyring: creates the first key, rotates, and reloads when a
 * token names a key it has not seen (another node rotated).
 */
export class KeyService {
  private current!: Keyring;
  private loadedAt = 0;
  private lastUnknownKidReload = 0;

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly bus: RevocationBus,
    private readonly settings: KeySettings,
    private readonly clock: Clock,
    private readonly onReloadError: (err: unknown) => void,
  ) {
    bus.subscribe((event) => {
      if (event.type === "keys") this.reload();
    });
  }

  /** Reload in the background (rotation message); a failure keeps the current keys. */
  reload(): void {
    this.load().catch(this.onReloadError);
  }

  /** Timer: reload when another process rotated, and at least every KEY_RELOAD_INTERVAL_MS. */
  check(): void {
    if (this.settings.jwtSecret) return;
    const due = this.clock.now() - this.loadedAt >= KEY_RELOAD_INTERVAL_MS;
    const reload = async () => {
      if (due || (await this.store.signingKeys.activeKid()) !== this.current.signing.kid) {
        await this.load();
      }
    };
    reload().catch(this.onReloadError);
  }

  get keyring(): Keyring {
    return this.current;
  }

  async load(): Promise<void> {
    const now = this.clock.now();
    if (this.settings.jwtSecret) {
      this.current = Keyring.fromSecret(this.settings.jwtSecret);
    } else {
      let rows = await this.store.signingKeys.listLive(now);
      if (rows.length === 0) {
        await this.insert(await generateEd25519(), now);
        rows = await this.store.signingKeys.listLive(now);
      }
      const active = rows.filter((r) => r.retired_at === null);
      const ordered = [...active, ...rows.filter((r) => r.retired_at !== null)];
      this.current = await Keyring.fromKeyPairs(
        ordered.map((r) => ({
          kid: r.kid,
          alg: "EdDSA",
          publicJwk: JSON.parse(r.public_jwk) as JWK,
          privateJwk: JSON.parse(this.box.open(r.private_jwk)) as JWK,
        })),
      );
    }
    this.loadedAt = now;
  }

  async reloadIfOlderThan(ms: number): Promise<void> {
    if (this.clock.now() - this.loadedAt >= ms) await this.load();
  }

  /** Key lookup for verification; an unknown kid triggers (throttled) reload. */
  findKey = async (kid: string): Promise<JwtKey | undefined> => {
    const known = this.current.find(kid);
    if (known || this.settings.jwtSecret) return known;
    const now = this.clock.now();
    if (now - this.lastUnknownKidReload < UNKNOWN_KID_RELOAD_MS) return undefined;
    this.lastUnknownKidReload = now;
    await this.load();
    return this.current.find(kid);
  };

  /**
   * New signing key; every older one stops signing but stays published until the
   * last token it signed has expired (access or purpose token, whichever lives
   * longer: an MFA token outlives access tokens configured under 10 minutes),
   * counting the time other nodes may take to notice (KEY_RELOAD_INTERVAL_MS) and
   * the verifiers' clock tolerance.
   */
  async rotate(): Promise<{ kid: string; retired: number }> {
    if (this.settings.jwtSecret)
      throw new Error("Keys cannot rotate in HS256 (shared secret) mode");
    const now = this.clock.now();
    const key = await generateEd25519();
    const longestTokenS = Math.max(this.settings.accessTtlSeconds, ...Object.values(PURPOSE_TTL_S));
    const publishedUntil =
      now + KEY_RELOAD_INTERVAL_MS + (longestTokenS + this.settings.clockToleranceSeconds) * 1000;
    const retired = await this.store.transaction(async (tx) => {
      await tx.signingKeys.insert(row(key, this.box, now));
      return tx.signingKeys.retireOthers(key.kid, now, publishedUntil);
    });
    await this.load();
    this.bus.publish({ type: "keys" }); // every other node reloads now, not at its next interval
    return { kid: key.kid, retired };
  }

  private async insert(key: GeneratedKey, now: number): Promise<void> {
    await this.store.signingKeys.insert(row(key, this.box, now));
  }
}

const row = (key: GeneratedKey, box: SecretBox, now: number) => ({
  kid: key.kid,
  alg: key.alg,
  public_jwk: JSON.stringify(key.publicJwk),
  private_jwk: box.seal(JSON.stringify(key.privateJwk)),
  created_at: now,
  retired_at: null,
  expires_at: null,
});
