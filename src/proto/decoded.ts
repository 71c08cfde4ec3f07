/**
 * Fields of a message as protobufjs decodes it, converted to what gRPC's loader gives (options in
 * `load.ts`) without the loader's cost: it makes each default afresh (a `Long` and its decimal string for
 * every int64 left out, a new empty `Buffer` for every bytes field) and turns every int64 into a string
 * through `Long`'s own base-10 loop. Here defaults are shared and an int64 goes through a number where
 * that is exact, else through a `bigint`. Used by lockd's request decoders and the client's answer decoders.
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

/** A decoded int64 as a decimal string: through a number below 2^53 in magnitude, else a `bigint`. */
export function decodedInt64(v: unknown): WireInt64 {
  const { low, high, unsigned } = v as DecodedLong;
  if (high === 0 && low === 0) return "0";
  const hi = unsigned ? high >>> 0 : high;
  if (hi >= -0x20_0000 && hi < 0x20_0000) return String(hi * TWO_TO_32 + (low >>> 0));
  const n = (BigInt(high) << 32n) | BigInt(low >>> 0);
  return (unsigned ? BigInt.asUintN(64, n) : BigInt.asIntN(64, n)).toString();
}
