import { describe, expect, it } from "vitest";
import { ipLimitKey, isIpAllowed, normalizeAllowedIps } from "../src/domain/ip-rules.js";

describe("allowedIps rules", () => {
  it("normalises addresses and ranges to canonical form and drops duplicates", () => {
    expect(
      normalizeAllowedIps([
        " 10.0.0.1 ",
        "2001:DB8::1",
        "2001:db8::/32",
        "::ffff:192.0.2.0/120",
        "10.0.0.1",
      ]),
    ).toEqual(["10.0.0.1", "2001:db8::1", "2001:db8::/32", "192.0.2.0/24"]);
  });

  it("writes a range by its network, and a full-length one as its address", () => {
    expect(
      normalizeAllowedIps([
        "10.1.2.3/8",
        "10.0.0.0/8",
        "127.0.0.1/32",
        "127.0.0.1",
        "2001:db8::5/64",
        "2001:db8::1/128",
        "::ffff:192.0.2.7/128",
        "0.0.0.0/0",
      ]),
    ).toEqual([
      "10.0.0.0/8",
      "127.0.0.1",
      "2001:db8::/64",
      "2001:db8::1",
      "192.0.2.7",
      "0.0.0.0/0",
    ]);
  });

  it("refuses an entry that is neither an address nor a CIDR, naming its index", () => {
    expect(() => normalizeAllowedIps(["10.0.0.1", "10.0.0.300"])).toThrowError(/not an IP/);
    try {
      normalizeAllowedIps(["10.0.0.1", "example.com"]);
    } catch (err) {
      expect((err as { extra: { errors: Array<{ path: string }> } }).extra.errors[0]?.path).toBe(
        "allowedIps.1",
      );
    }
  });

  it("refuses inet_aton shorthands, which ipaddr.js reads as other addresses (010. is octal 8.)", () => {
    for (const entry of ["010.0.0.0/8", "010.0.0.1", "10.1", "1.2.3", "0x0a.0.0.1", "167772161"]) {
      expect(() => normalizeAllowedIps([entry]), entry).toThrowError(/not an IP/);
    }
    expect(() => normalizeAllowedIps(["::ffff:010.0.0.1"])).toThrowError(/not an IP/);
    expect(normalizeAllowedIps(["10.0.0.0/8", "0.0.0.0", "::ffff:10.0.0.1"])).toEqual([
      "10.0.0.0/8",
      "0.0.0.0",
      "10.0.0.1",
    ]);
  });

  it("refuses an IPv6 zone index (fe80::1%eth0), which no client address carries", () => {
    expect(() => normalizeAllowedIps(["fe80::1%eth0"])).toThrowError(/zone index/);
    expect(() => normalizeAllowedIps(["fe80::1%2/64"])).toThrowError(/zone index/);
  });

  it("allows everything when the list is empty", () => {
    expect(isIpAllowed("203.0.113.9", [])).toBe(true);
  });

  it("matches IPv4 and IPv6 addresses and CIDRs, never across families", () => {
    const rules = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"];
    expect(isIpAllowed("10.200.3.4", rules)).toBe(true);
    expect(isIpAllowed("11.0.0.1", rules)).toBe(false);
    expect(isIpAllowed("2001:db8:ffff::1", rules)).toBe(true);
    expect(isIpAllowed("2001:db9::1", rules)).toBe(false);
    expect(isIpAllowed("192.0.2.7", rules)).toBe(true);
    expect(isIpAllowed("192.0.2.8", rules)).toBe(false);
  });

  it("treats IPv4-mapped IPv6 as the IPv4 address (dual-stack sockets)", () => {
    expect(isIpAllowed("::ffff:10.1.2.3", ["10.0.0.0/8"])).toBe(true);
    expect(isIpAllowed("::ffff:11.1.2.3", ["10.0.0.0/8"])).toBe(false);
  });

  it("refuses a malformed client address", () => {
    expect(isIpAllowed("not-an-ip", ["10.0.0.0/8"])).toBe(false);
  });
});

describe("ipLimitKey", () => {
  it("counts IPv4 by address (mapped or not) and IPv6 by its /64", () => {
    expect(ipLimitKey("203.0.113.9")).toBe("203.0.113.9");
    expect(ipLimitKey("::ffff:203.0.113.9")).toBe("203.0.113.9");
    expect(ipLimitKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(ipLimitKey("2001:DB8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(ipLimitKey("2001:db8:1:3::1")).not.toBe(ipLimitKey("2001:db8:1:2::1"));
  });
});
