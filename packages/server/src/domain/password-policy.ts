import { validationFailed } from "./errors.js";

/** The `password` section of the configuration that decides which new passwords are accepted. */
export interface PasswordRules {
  minLength: number;
  maxLength: number;
  /** zxcvbn-ts score (0-4) a new password must reach; 0 turns the estimate off. */
  minStrengthScore: number;
}

/** Who the password is for: it must not be their own name. */
export interface PasswordOwner {
  username?: string | null;
  email?: string | null;
}

let common: Promise<Set<string>> | undefined;

/**
 * Refuses a new password that breaks a rule of OWASP ASVS V6.2 / NIST SP 800-63B §3.1.1.2,
 * as `validation_failed` whose message names the rule: its length in code points after
 * NFKC (never truncated), one of the 10,000 most common passwords, the user's own
 * username, email or email local part (case-insensitively), and, when configured, a
 * zxcvbn-ts score below the minimum. No composition rules (ASVS 6.2.5).
 * Every flow that sets a password calls this: register, setup, change, guest upgrade
 * and admin creation; reset, which learns the owner later, adds `assertNotOwnName`.
 */
export async function assertPasswordAcceptable(
  password: string,
  owner: PasswordOwner,
  rules: PasswordRules,
  path = "password",
): Promise<void> {
  const normalized = password.normalize("NFKC");
  assertPasswordLength(normalized, rules, path);
  const folded = normalized.toLowerCase();
  // Loaded on the first password set, not at start-up (source and licence: common-passwords.ts).
  common ??= import("./common-passwords.js").then((m) => new Set(m.COMMON_PASSWORDS.split("\n")));
  if ((await common).has(folded)) {
    throw validationFailed(path, "must not be a common password (one of the 10,000 most used)");
  }
  assertNotOwnName(normalized, owner, path);
  if (rules.minStrengthScore > 0) {
    const score = await strength(normalized, owner);
    if (score < rules.minStrengthScore) {
      throw validationFailed(
        path,
        `is too easy to guess (strength ${score} of 4, at least ${rules.minStrengthScore} needed)`,
      );
    }
  }
}

/** Length in code points after NFKC: what a user perceives as characters. */
export function assertPasswordLength(
  password: string,
  rules: Pick<PasswordRules, "minLength" | "maxLength">,
  path = "password",
): void {
  const length = [...password.normalize("NFKC")].length;
  if (length < rules.minLength) {
    throw validationFailed(path, `must be at least ${rules.minLength} characters`);
  }
  if (length > rules.maxLength) {
    throw validationFailed(path, `must be at most ${rules.maxLength} characters`);
  }
}

/** Not the username, the email or its local part, case-insensitively (part of the rules above). */
export function assertNotOwnName(password: string, owner: PasswordOwner, path = "password"): void {
  const folded = password.normalize("NFKC").toLowerCase();
  const taken = ownNames(owner).find(([, name]) => name === folded);
  if (taken) throw validationFailed(path, `must not be the same as your ${taken[0]}`);
}

function ownNames(owner: PasswordOwner): Array<[string, string]> {
  const fold = (s: string) => s.normalize("NFKC").toLowerCase();
  const names: Array<[string, string]> = [];
  if (owner.username) names.push(["username", fold(owner.username)]);
  if (owner.email) {
    names.push(["email address", fold(owner.email)]);
    const local = owner.email.slice(0, owner.email.lastIndexOf("@"));
    if (local) names.push(["email address", fold(local)]);
  }
  return names;
}

type Estimator = (password: string, userInputs: string[]) => number;
let estimator: Promise<Estimator> | undefined;

/** zxcvbn-ts and its dictionaries (~1.5 MB) load on first use only: start-up stays fast. */
async function strength(password: string, owner: PasswordOwner): Promise<number> {
  estimator ??= Promise.all([import("@zxcvbn-ts/core"), import("@zxcvbn-ts/language-common")]).then(
    ([core, language]) => {
      const factory = new core.ZxcvbnFactory({
        dictionary: language.dictionary,
        graphs: language.adjacencyGraphs,
      });
      return (pw, inputs) => factory.check(pw, inputs).score;
    },
  );
  const inputs = [owner.username, owner.email].filter((s): s is string => Boolean(s));
  return (await estimator)(password, inputs);
}
