/**
 * int64 on the wire. The proto loader decodes 64-bit integers as decimal strings (never as a JavaScript
 * `number`, which would lose precision past 2^53); the public API of every part uses `bigint`. These two
 * functions are the only crossing between the two.
 */

/** A 64-bit integer as the proto loader carries it: a decimal string. */
export type WireInt64 = string;

/**
 * Converts a decoded wire int64 (decimal string, or a missing field) to `bigint`. A missing field is 0,
 * as in proto3.
 */
export function fromWire(value: WireInt64 | null | undefined): bigint {
  if (value === undefined || value === null || value === "") return 0n;
  return BigInt(value);
}

/** Converts a `bigint` to the decimal string the proto loader encodes exactly as an int64. */
export function toWire(value: bigint): WireInt64 {
  return value.toString(10);
}
