import { isIP } from "node:net";
import ipaddr from "ipaddr.js";
import { validationFailed } from "./errors.js";

/** The most rules one user may keep; the list is checked on every request. */
export const MAX_ALLOWED_IPS = 100;

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * Normalises a user's allow-list: each entry an IPv4/IPv6 address or CIDR, written
 * back in canonical form, once: "2001:DB8::1" -> "2001:db8::1", a range by its network
 * ("10.1.2.3/8" -> "10.0.0.0/8"), a full-length one as the address ("10.0.0.1/32" ->
 * "10.0.0.1"), IPv4-mapped IPv6 as IPv4. Invalid entries are a validation error naming
 * the index.
 */
export function normalizeAllowedIps(entries: string[]): string[] {
  if (entries.length > MAX_ALLOWED_IPS) {
    throw validationFailed("allowedIps", `must hold at most ${MAX_ALLOWED_IPS} entries`);
  }
  return [
    ...new Set(
      entries.map((entry, i) => {
        const value = entry.trim();
        const notAnIp = () =>
          validationFailed(`allowedIps.${i}`, `"${entry}" is not an IP address or CIDR range`);
        // A zone index (fe80::1%eth0) names the server's own interface, which a client
        // address never carries: the rule would be kept with it and read as the bare address.
        if (value.includes("%")) {
          throw validationFailed(
            `allowedIps.${i}`,
            `"${entry}" has a zone index; give the address alone`,
          );
        }
        // ipaddr.js also reads inet_aton's shorthands: "010.0.0.0/8" as octal, i.e.
        // 8.0.0.0/8, "10.1" as 10.0.0.1, "0x0a.0.0.1", a bare 32-bit number. A rule must
        // mean what it says, so the address is the dotted-decimal (or RFC 4291) form alone.
        const slash = value.indexOf("/");
        if (isIP(slash === -1 ? value : value.slice(0, slash)) === 0) throw notAnIp();
        if (ipaddr.isValidCIDR(value)) {
          const [addr, bits] = ipaddr.parseCIDR(value);
          if (isMapped(addr) && bits < 96) {
            throw validationFailed(`allowedIps.${i}`, `"${entry}" spans beyond IPv4-mapped space`);
          }
          return canonicalRange(unmapped(addr), isMapped(addr) ? bits - 96 : bits);
        }
        if (ipaddr.isValid(value)) return ipaddr.process(value).toString();
        throw notAnIp();
      }),
    ),
  ];
}

function canonicalRange(addr: ipaddr.IPv4 | ipaddr.IPv6, bits: number): string {
  const full = addr.kind() === "ipv4" ? 32 : 128;
  if (bits === full) return addr.toString();
  const network =
    addr.kind() === "ipv4"
      ? ipaddr.IPv4.networkAddressFromCIDR(`${addr.toString()}/${bits}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${addr.toString()}/${bits}`);
  return `${network.toString()}/${bits}`;
}

/** An empty list allows every address. IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4. */
export function isIpAllowed(ip: string, rules: readonly string[]): boolean {
  if (rules.length === 0) return true;
  if (!ipaddr.isValid(ip)) return false;
  const addr = ipaddr.process(ip);
  return rules.some((rule) => {
    const range: Range = rule.includes("/")
      ? ipaddr.parseCIDR(rule)
      : [ipaddr.process(rule), ipaddr.process(rule).kind() === "ipv4" ? 32 : 128];
    return range[0].kind() === addr.kind() && addr.match(range);
  });
}

const isMapped = (addr: ipaddr.IPv4 | ipaddr.IPv6) =>
  addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress();

const unmapped = (addr: ipaddr.IPv4 | ipaddr.IPv6) =>
  isMapped(addr) ? (addr as ipaddr.IPv6).toIPv4Address() : addr;

/** One IPv6 subscriber usually holds a whole /64: counting addresses one by one would let it walk around every per-IP limit. */
const IPV6_LIMIT_PREFIX = 64;

const CANONICAL_IPV4 =
  /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/**
 * The key per-IP limits count under: the address for IPv4 (mapped ones too), its
 * /64 for IPv6.
 */
export function ipLimitKey(ip: string): string {
  // Most keys are plain IPv4 already in canonical form: every login takes two of them.
  if (CANONICAL_IPV4.test(ip)) return ip;
  if (!ipaddr.isValid(ip)) return ip;
  const addr = ipaddr.process(ip);
  if (addr.kind() === "ipv4") return addr.toString();
  const parts = (addr as ipaddr.IPv6).parts.slice(0, IPV6_LIMIT_PREFIX / 16);
  return `${parts.map((p) => p.toString(16)).join(":")}::/${IPV6_LIMIT_PREFIX}`;
}
