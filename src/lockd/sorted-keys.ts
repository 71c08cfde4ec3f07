/**
 * The live keys in byte order, for range scans. A sorted array with binary search: lookups are
 * O(log n) and an insert moves pointers only (about 0.1 ms at 100,000 keys), which is cheaper in memory
 * than a tree of node objects.
 */
import type { KeyRange, KeyString } from "./keys.js";

/** A sorted set of keys. */
export class SortedKeys {
  private keys: KeyString[] = [];

  /** Number of keys. */
  get size(): number {
    return this.keys.length;
  }

  /** Replaces the content with `keys`, which must already be sorted and distinct. */
  reset(keys: KeyString[]): void {
    this.keys = keys;
  }

  /** Adds `key` if absent. */
  add(key: KeyString): void {
    const i = this.lowerBound(key);
    if (this.keys[i] !== key) this.keys.splice(i, 0, key);
  }

  /** Removes `key` if present. */
  delete(key: KeyString): void {
    const i = this.lowerBound(key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
  }

  /** Positions `[lo, hi)` of the keys in `range`: `hi - lo` is their count, found in O(log n). */
  bounds(range: KeyRange): [number, number] {
    if ("single" in range) {
      const i = this.lowerBound(range.single);
      return this.keys[i] === range.single ? [i, i + 1] : [i, i];
    }
    const lo = this.lowerBound(range.start);
    if (range.end === null) return [lo, this.keys.length];
    if (range.end <= range.start) return [lo, lo];
    return [lo, this.lowerBound(range.end)];
  }

  /** A copy of the keys at positions `[lo, hi)`. */
  slice(lo: number, hi: number): KeyString[] {
    return this.keys.slice(lo, hi);
  }

  /** Removes the keys at positions `[lo, hi)` in one move (a range delete). */
  deleteBetween(lo: number, hi: number): void {
    if (hi > lo) this.keys.splice(lo, hi - lo);
  }

  /** Removes every key of `gone` in one pass (a lease's keys, spread over the index). */
  deleteAll(gone: ReadonlySet<KeyString>): void {
    this.keys = this.keys.filter((k) => !gone.has(k));
  }

  /** The keys in `range`, in byte order. */
  *scan(range: KeyRange): Generator<KeyString> {
    if ("single" in range) {
      const i = this.lowerBound(range.single);
      if (this.keys[i] === range.single) yield range.single;
      return;
    }
    if (range.end !== null && range.end <= range.start) return;
    for (let i = this.lowerBound(range.start); i < this.keys.length; i++) {
      const key = this.keys[i] as KeyString;
      if (range.end !== null && key >= range.end) return;
      yield key;
    }
  }

  /** Index of the first key ≥ `key`. */
  private lowerBound(key: KeyString): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.keys[mid] as KeyString) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
