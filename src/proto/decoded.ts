/**
 * Fields of a message as protobufjs decodes it, converted to what gRPC's loader gives (options in
 * `load.ts`) without the loader's cost: it makes each default afresh (a `Long` and its decimal string for
 * every int64 left out, a new empty `Buffer` for every bytes field) and turns every int64 into a string
 * through `Long`'s own base-10 loop. Here defaults are shared and an int64 goes through a number where
 * that is exact. Used by lockd's request decoders and the client's answer decoders.
 */
import type { WireInt64 } from "./int64.js";

/** A message as protobufjs decodes it: fields sent are own properties, defaults inherited. */
export type Decoded = Record<string, unknown>;

/** An int64 as protobufjs decodes it when the `long` package is present (checked where it is loaded). */
interface DecodedLong {
  low: number;
  high: number;
  unsigned: boolean;
}

/** The empty bytes every absent bytes field shares. It has no bytes to change. */
export const EMPTY_BYTES: Buffer = Buffer.alloc(0);

const TWO_TO_32 = 4_294_967_296;

/** A decoded bytes field: an absent one is protobufjs's shared empty array; a present one (even empty) a Buffer. */
export function decodedBytes(v: unknown): Buffer {
  return Buffer.isBuffer(v) ? v : EMPTY_BYTES;
}

/** A decoded repeated message field, each item converted. */
export function decodedList<T>(v: unknown, convert: (m: Decoded) => T): T[] {
  const items = v as Decoded[];
  const out = new Array<T>(items.length);
  for (let i = 0; i < items.length; i++) out[i] = convert(items[i] as Decoded);
  return out;
}

/** A decoded int64 as a decimal string, exact over the whole 64-bit range (tested against `bigint`). */
export function decodedInt64(v: unknown): WireInt64 {
  const { low, high, unsigned } = v as DecodedLong;
  if (high === 0 && low === 0) return "0";
  const hi = unsigned ? high >>> 0 : high;
  if (hi >= -0x20_0000 && hi < 0x20_0000) return String(hi * TWO_TO_32 + (low >>> 0));
  if (hi >= 0) return unsignedDecimal(hi, low >>> 0);
  // Two's complement: the magnitude is the bits inverted, plus one.
  const lo = (~low + 1) >>> 0;
  return `-${unsignedDecimal((~high + (lo === 0 ? 1 : 0)) >>> 0, lo)}`;
}

const E7 = 10_000_000;

/**
 * `hi` × 2^32 + `lo` (both unsigned 32-bit) in decimal without a `bigint`, which took most of the time of
 * decoding an answer: etcd's cluster and member IDs and its lease IDs are past 2^53. The value is split
 * into 24-bit pieces c0, c1, c2 (value = c0 + c1·2^24 + c2·2^48) and summed in base 10^7, where
 * 2^24 = 10^7 + 6,777,216 and 2^48 = 2·10^14 + 8,147,497·10^7 + 6,710,656; every sum stays below 2^53.
 */
function unsignedDecimal(hi: number, lo: number): string {
  const c0 = lo & 0xff_ffff;
  const c1 = ((lo >>> 24) | (hi << 8)) & 0xff_ffff;
  const c2 = hi >>> 16;
  let a = c0 + 6_777_216 * c1 + 6_710_656 * c2;
  let b = c1 + 8_147_497 * c2;
  let c = 2 * c2;
  b += Math.floor(a / E7);
  a %= E7;
  c += Math.floor(b / E7);
  b %= E7;
  if (c > 0) return `${c}${String(b).padStart(7, "0")}${String(a).padStart(7, "0")}`;
  if (b > 0) return `${b}${String(a).padStart(7, "0")}`;
  return String(a);
}
