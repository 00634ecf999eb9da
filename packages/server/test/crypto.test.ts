import { describe, expect, it } from "vitest";
import { randomBytes } from "../src/domain/crypto.js";

describe("randomBytes (pooled CSPRNG draws)", () => {
  it("hands out each byte once, across pool refills", () => {
    // 16-byte draws over ten 4 KiB pools: no two alike, none all zero (a drawn-from slot is wiped).
    const draws = Array.from({ length: 2560 }, () => randomBytes(16).toString("hex"));
    expect(new Set(draws).size).toBe(draws.length);
    expect(draws).not.toContain("0".repeat(32));
    expect(draws.every((d) => d.length === 32)).toBe(true);
  });

  it("gives copies a later draw cannot change, and sizes above the pool", () => {
    const first = randomBytes(32);
    const copy = Buffer.from(first);
    for (let i = 0; i < 300; i++) randomBytes(32);
    expect(first.equals(copy)).toBe(true);
    expect(randomBytes(10_000)).toHaveLength(10_000);
  });
});
