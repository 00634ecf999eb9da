import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isEd25519Point } from "../src/domain/ed25519-point.js";
import { isUsablePasskeyKey, PASSKEY_ALGORITHMS } from "../src/domain/passkey-public-key.js";
import { ec2Key, jwkOf, okpKey, rsaKey } from "./cose-keys.js";

/** An unsigned big-endian integer of exactly `bits` bits: all ones. */
const ones = (bits: number) => {
  const bytes = Buffer.alloc(Math.ceil(bits / 8), 0xff);
  bytes[0] = 0xff >> (bytes.length * 8 - bits);
  return bytes;
};
const F4 = Buffer.from([1, 0, 1]);

describe("passkey public keys", () => {
  it("offers EdDSA, ES256 and RS256, in that order", () => {
    expect(PASSKEY_ALGORITHMS).toEqual([-8, -7, -257]);
  });

  it("takes real keys of each offered algorithm", () => {
    const p256 = jwkOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
    const ed25519 = jwkOf(generateKeyPairSync("ed25519").publicKey);
    const rs = jwkOf(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey);
    expect(isUsablePasskeyKey(ec2Key(p256("x"), p256("y")))).toBe(true);
    expect(isUsablePasskeyKey(okpKey(ed25519("x")))).toBe(true);
    expect(isUsablePasskeyKey(rsaKey(rs("n"), rs("e")))).toBe(true);
  });

  it("refuses an EC2 key off P-256 or not of its size", () => {
    const p256 = jwkOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
    const [x, y] = [p256("x"), p256("y")];
    const offCurve = Buffer.from(y);
    offCurve[31] = (offCurve[31] ?? 0) ^ 1;
    expect(isUsablePasskeyKey(ec2Key(x, offCurve))).toBe(false);
    expect(isUsablePasskeyKey(ec2Key(x.subarray(29), y.subarray(29)))).toBe(false);
    // node:crypto would take a leading zero byte; COSE coordinates are exactly 32 bytes.
    expect(isUsablePasskeyKey(ec2Key(Buffer.concat([Buffer.alloc(1), x]), y))).toBe(false);
    expect(isUsablePasskeyKey(ec2Key(x, true))).toBe(false); // a compressed point
    expect(isUsablePasskeyKey(ec2Key(x, undefined))).toBe(false);
    expect(isUsablePasskeyKey(ec2Key(Buffer.alloc(32), Buffer.alloc(32)))).toBe(false);
  });

  it("refuses an algorithm not offered, and a key of another kind than its algorithm's", () => {
    const p256 = jwkOf(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
    const p384 = jwkOf(generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey);
    expect(isUsablePasskeyKey(ec2Key(p384("x"), p384("y"), { alg: -35, crv: 2 }))).toBe(false);
    expect(isUsablePasskeyKey(ec2Key(p384("x"), p384("y"), { crv: 2 }))).toBe(false);
    expect(isUsablePasskeyKey(ec2Key(p256("x"), p256("y"), { alg: -8 }))).toBe(false);
    const noAlg = ec2Key(p256("x"), p256("y"));
    noAlg.delete(3);
    expect(isUsablePasskeyKey(noAlg)).toBe(false);
    const ed25519 = jwkOf(generateKeyPairSync("ed25519").publicKey);
    expect(isUsablePasskeyKey(okpKey(ed25519("x"), 7))).toBe(false); // Ed448's curve
  });

  it("refuses an Ed25519 key of the wrong length or that is no point", () => {
    expect(isUsablePasskeyKey(okpKey(Buffer.alloc(31, 7)))).toBe(false);
    expect(isUsablePasskeyKey(okpKey(Buffer.alloc(33, 7)))).toBe(false);
    // y = 2 is the smallest y with no x on the curve.
    expect(isUsablePasskeyKey(okpKey(Buffer.from([2, ...Buffer.alloc(31)])))).toBe(false);
  });

  it("refuses an RSA key that cannot verify, or under which anyone can sign", () => {
    const rs = jwkOf(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey);
    const n = rs("n");
    expect(isUsablePasskeyKey(rsaKey(Buffer.from("garbage"), F4))).toBe(false);
    expect(isUsablePasskeyKey(rsaKey(Buffer.alloc(0), F4))).toBe(false);
    expect(isUsablePasskeyKey(rsaKey(ones(2047), F4))).toBe(false);
    expect(isUsablePasskeyKey(rsaKey(ones(16385), F4))).toBe(false);
    const even = Buffer.from(n);
    even[even.length - 1] = (even[even.length - 1] ?? 0) & 0xfe;
    expect(isUsablePasskeyKey(rsaKey(even, F4))).toBe(false);
    expect(isUsablePasskeyKey(rsaKey(n, Buffer.from([1])))).toBe(false);
    expect(isUsablePasskeyKey(rsaKey(n, Buffer.from([4])))).toBe(false);
    expect(isUsablePasskeyKey(rsaKey(n, ones(65)))).toBe(false);
    // The bounds themselves are taken; a leading zero byte changes no number.
    expect(isUsablePasskeyKey(rsaKey(ones(2048), F4))).toBe(true);
    expect(isUsablePasskeyKey(rsaKey(ones(16384), ones(64)))).toBe(true);
    expect(isUsablePasskeyKey(rsaKey(Buffer.concat([Buffer.alloc(1), n]), F4))).toBe(true);
  });
});

describe("isEd25519Point (RFC 8032 §5.1.3)", () => {
  it("takes every key node:crypto makes", () => {
    for (let i = 0; i < 50; i++) {
      const x = jwkOf(generateKeyPairSync("ed25519").publicKey)("x");
      expect(isEd25519Point(x)).toBe(true);
    }
  });

  it("refuses non-points and non-canonical encodings", () => {
    const le = (y: number, xIsOdd = false) => {
      const bytes = Buffer.alloc(32);
      bytes[0] = y;
      if (xIsOdd) bytes[31] = 0x80;
      return bytes;
    };
    expect(isEd25519Point(le(1))).toBe(true); // the neutral point (0, 1)
    expect(isEd25519Point(le(3))).toBe(true);
    expect(isEd25519Point(le(2))).toBe(false);
    expect(isEd25519Point(le(7))).toBe(false);
    // x = 0 with its sign bit set, and y = p: both non-canonical.
    expect(isEd25519Point(le(1, true))).toBe(false);
    const yIsP = Buffer.alloc(32, 0xff);
    yIsP[0] = 0xed;
    yIsP[31] = 0x7f;
    expect(isEd25519Point(yIsP)).toBe(false);
  });
});
