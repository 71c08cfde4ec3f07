/**
 * A small seeded pseudo-random generator, so that a run's choices (fault schedule, the keys a worker
 * picks) are a function of `--seed` and nothing else. Not for cryptography.
 */

/** A seeded stream of pseudo-random numbers. */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n) for n ≥ 1. */
  int(n: number): number;
  /** An integer in [lo, hi], both included. */
  between(lo: number, hi: number): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
}

/** Hashes a string to a 32-bit unsigned integer (FNV-1a followed by a final avalanche). */
export function hashSeed(seed: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * Creates a generator from a seed (any string; numbers are used by their decimal text). The same seed
 * always yields the same sequence. The core is mulberry32: 32 bits of state, period 2^32, enough for
 * schedules of a few thousand draws.
 */
export function createPrng(seed: string | number): Prng {
  let state = hashSeed(String(seed));
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    between: (lo, hi) => lo + int(hi - lo + 1),
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError("pick from an empty array");
      return items[int(items.length)] as T;
    },
  };
}
