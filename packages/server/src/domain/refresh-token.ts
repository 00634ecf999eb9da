import type { KeyObject } from "node:crypto";
import { hmac, macKey, safeEqual } from "./crypto.js";
import { isUuid } from "./ids.js";

/**
 * Refresh tokens are `<sessionId>.<generation>.<mac>`, where mac is
 * HMAC-SHA256(serverKey, sessionId|generation): 256 bits no client can forge.
 *
 * Deriving the token from the session's generation (DESIGN.md, "Refresh rotation")
 * gives us two things without storing any token: concurrent refreshes inside the
 * grace window can be answered with the same successor, and a token from any older
 * generation is recognised as reuse (not as garbage) after proving it was really
 * issued. The database still keeps only the SHA-256 of the current and previous
 * token, and rotation compares on that hash.
 */
export class RefreshTokenCodec {
  private readonly key: KeyObject;

  constructor(key: Buffer) {
    this.key = macKey(key);
  }

  issue(sessionId: string, generation: number): string {
    return `${sessionId}.${generation}.${this.mac(sessionId, generation)}`;
  }

  /** The session and generation of a token this server issued, or undefined. */
  parse(token: string): { sessionId: string; generation: number } | undefined {
    const parts = token.split(".");
    if (parts.length !== 3) return undefined;
    const [sessionId, gen, mac] = parts as [string, string, string];
    if (!isUuid(sessionId) || !/^\d{1,9}$/.test(gen)) return undefined;
    const generation = Number(gen);
    if (!safeEqual(mac, this.mac(sessionId, generation))) return undefined;
    return { sessionId, generation };
  }

  private mac(sessionId: string, generation: number): string {
    return hmac(this.key, `refresh|${sessionId}|${generation}`);
  }
}
