import { ENV } from "./schema.js";

/** Every environment variable Latchkey reads: the settings, and the config file's name. */
const KNOWN = [...Object.keys(ENV), "LATCHKEY_CONFIG"];
const KNOWN_SET = new Set(KNOWN);
const PREFIX = "LATCHKEY_";
/** Edits (a letter missed, doubled, swapped or wrong) that still make a name a likely typo. */
const MAX_TYPO_DISTANCE = 3;

export interface UnknownVariable {
  name: string;
  /** The known name it is closest to, when one is close enough to be a typo of it. */
  meant?: string;
}

/**
 * LATCHKEY_* variables (in any case) that name no setting. They are ignored, not refused: a
 * deployment's environment may carry settings of a newer version. But a typo
 * (LATCHKEY_ACCES_TTL_SECONDS) would otherwise leave the default in place without a word.
 */
export function unknownVariables(env: Record<string, string | undefined>): UnknownVariable[] {
  return Object.keys(env)
    .filter((name) => name.toUpperCase().startsWith(PREFIX) && !KNOWN_SET.has(name))
    .sort()
    .map((name) => {
      const meant = closestKnown(name);
      return meant ? { name, meant } : { name };
    });
}

/** One line for the log: each name, with the one it probably meant. */
export function describeUnknownVariables(unknown: readonly UnknownVariable[]): string {
  const names = unknown.map(({ name, meant }) =>
    meant ? `${name} (did you mean ${meant}?)` : name,
  );
  return `Ignoring unknown environment variables: ${names.join(", ")}`;
}

/**
 * Compared without case, and also without the prefix for the settings that have none
 * (LATCHKEY_DATABASE_URL meant DATABASE_URL).
 */
function closestKnown(name: string): string | undefined {
  const upper = name.toUpperCase();
  let best: { known: string; distance: number } | undefined;
  for (const known of KNOWN) {
    const bare = known.startsWith(PREFIX) ? upper : upper.slice(PREFIX.length);
    const distance = editDistance(bare, known);
    if (distance <= MAX_TYPO_DISTANCE && (!best || distance < best.distance)) {
      best = { known, distance };
    }
  }
  return best?.known;
}

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and swaps of
 * two neighbours each count one (Damerau, 1964), the usual kinds of typo.
 */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, at(i - 2, j - 2) + 1);
      }
      (rows[i] as number[])[j] = d;
    }
  }
  return at(a.length, b.length);
}
