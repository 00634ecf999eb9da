import { Algorithm, hash, verify } from "@node-rs/argon2";
import { randomToken } from "./crypto.js";

/** Hashing parameters; which passwords are acceptable is password-policy.ts's job. */
export interface PasswordPolicy {
  argon2MemoryKiB: number;
  argon2Iterations: number;
  argon2Parallelism: number;
}

/**
 * Argon2id hashing (OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1 by default).
 * @node-rs/argon2 runs each hash on the libuv pool, so the event loop keeps serving.
 */
export class PasswordHasher {
  private dummyHash: Promise<string> | undefined;
  private readonly params: string;

  constructor(
    private readonly policy: PasswordPolicy,
    /** Told how long each Argon2 operation took (the metrics' password-hash histogram). */
    private readonly onTiming: (operation: "hash" | "verify", ms: number) => void = () => {},
  ) {
    this.params = `m=${policy.argon2MemoryKiB},t=${policy.argon2Iterations},p=${policy.argon2Parallelism}`;
  }

  /** NFKC so the same password typed on different keyboards hashes the same (ASVS 6.2.x). */
  normalize(password: string): string {
    return password.normalize("NFKC");
  }

  async hash(password: string): Promise<string> {
    const started = performance.now();
    try {
      return await hash(this.normalize(password), {
        algorithm: Algorithm.Argon2id,
        memoryCost: this.policy.argon2MemoryKiB,
        timeCost: this.policy.argon2Iterations,
        parallelism: this.policy.argon2Parallelism,
      });
    } finally {
      this.onTiming("hash", performance.now() - started);
    }
  }

  async verify(stored: string, password: string): Promise<boolean> {
    const started = performance.now();
    try {
      return await verify(stored, this.normalize(password));
    } catch {
      return false; // a malformed stored hash is a failed login, not a 500
    } finally {
      this.onTiming("verify", performance.now() - started);
    }
  }

  /**
   * Spends the same work as a real verify against a hash of our own, so an unknown
   * identifier answers in the same time as a wrong password.
   */
  async verifyDummy(password: string): Promise<false> {
    this.dummyHash ??= this.hash(randomToken());
    await this.verify(await this.dummyHash, password);
    return false;
  }

  /** True when a stored hash was made with other parameters than the configured ones. */
  needsRehash(stored: string): boolean {
    return !stored.startsWith("$argon2id$") || !stored.includes(`$${this.params}$`);
  }
}
