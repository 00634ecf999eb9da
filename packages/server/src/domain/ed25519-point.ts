/** The field prime of edwards25519, 2^255 − 19 (RFC 8032 §5.1). */
const P = 2n ** 255n - 19n;
/** The curve constant d = −121665/121666 mod p (RFC 8032 §5.1). */
const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;

const mod = (a: bigint) => ((a % P) + P) % P;

const powMod = (base: bigint, exponent: bigint): bigint => {
  let result = 1n;
  let square = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * square) % P;
    square = (square * square) % P;
  }
  return result;
};

/**
 * Whether 32 bytes decode to a point of edwards25519 (RFC 8032 §5.1.3). Node imports
 * any 32 bytes as an Ed25519 public key; about half of them are no point, and a key
 * like that only makes every later signature check fail.
 */
export function isEd25519Point(encoded: Uint8Array): boolean {
  if (encoded.length !== 32) return false;
  const value = BigInt(`0x${Buffer.from(encoded).reverse().toString("hex")}`);
  // Little-endian y, with the sign of x in the top bit.
  const xIsOdd = value >> 255n === 1n;
  const y = value & (2n ** 255n - 1n);
  if (y >= P) return false;
  const y2 = (y * y) % P;
  // x² = (y² − 1) / (d·y² + 1); the divisor is never 0, as −1/d is not a square mod p.
  const x2 = mod((y2 - 1n) * powMod(D * y2 + 1n, P - 2n));
  // x = 0 has no odd twin: the encoding with the sign bit set is not canonical.
  if (x2 === 0n) return !xIsOdd;
  // Euler's criterion: x² has a square root mod p exactly when this is 1.
  return powMod(x2, (P - 1n) / 2n) === 1n;
}
