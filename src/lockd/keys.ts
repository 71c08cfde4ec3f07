/**
 * Keys and key ranges. Inside lockd a key is a "binary" (latin1) string: one UTF-16 unit per byte, so
 * JavaScript's string order is exactly etcd's byte order and the string can key a `Map`.
 */

/** A key as lockd holds it: one char per byte. */
export type KeyString = string;

/** Converts a wire key to lockd's form. */
export function keyOf(buf: Buffer): KeyString {
  return buf.toString("latin1");
}

/** Converts lockd's form back to bytes. */
export function keyBytes(key: KeyString): Buffer {
  return Buffer.from(key, "latin1");
}

/**
 * The keys a request names, as etcd reads `key` and `range_end`: no range end is the single key, a range
 * end of one zero byte is every key from `key` on, anything else is the half-open interval [key, end).
 */
export type KeyRange = { single: KeyString } | { start: KeyString; end: KeyString | null };

/** Builds the range of a Range, DeleteRange, Compare or Watch request. */
export function keyRange(key: Buffer, rangeEnd: Buffer | null | undefined): KeyRange {
  const start = keyOf(key);
  if (!rangeEnd || rangeEnd.length === 0) return { single: start };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { start, end: null };
  return { start, end: keyOf(rangeEnd) };
}

/** True if `key` is in `range`. */
export function inRange(range: KeyRange, key: KeyString): boolean {
  if ("single" in range) return key === range.single;
  return key >= range.start && (range.end === null || key < range.end);
}
