/**
 * The protobuf wire format's primitives, for the answers lockd writes by hand (`encode.ts`,
 * `kv-answers.ts`): varints, int64 fields (two's complement, so a negative one is 10 bytes) and tags.
 * An integer is written through a JavaScript number only when it is exact there (below 2^53).
 */

/** Wire type of varint fields (integers, booleans, enums). */
export const VARINT = 0;
/** Wire type of length-delimited fields (bytes, strings, nested messages, packed lists). */
export const LENGTH_DELIMITED = 2;

const MAX_SAFE = 9_007_199_254_740_991n;

/** Size of a varint of a non-negative integer up to 2^53. */
export function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x20_0000) return 3;
  if (n < 0x1000_0000) return 4;
  if (n < 0x8_0000_0000) return 5;
  if (n < 0x400_0000_0000) return 6;
  if (n < 0x2_0000_0000_0000) return 7;
  return 8;
}

/** Writes `n` (a non-negative integer up to 2^53) as a varint at `offset`; returns the offset after it. */
export function writeVarint(out: Buffer, offset: number, n: number): number {
  let o = offset;
  let v = n;
  while (v >= 0x80) {
    // `& 0x7f` keeps the low bits exactly for any integer up to 2^53.
    out[o++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[o++] = v;
  return o;
}

/** The two 32-bit halves of an int64 as protobuf writes it (two's complement: a negative one is 10 bytes). */
function halves(n: bigint): [lo: number, hi: number] {
  return [Number(BigInt.asUintN(32, n)), Number(BigInt.asUintN(32, n >> 32n))];
}

/** Size of the varint of an int64 field's value. */
export function int64Size(n: bigint): number {
  if (n >= 0n && n <= MAX_SAFE) return varintSize(Number(n));
  const [, hi] = halves(n);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Writes `n` as an int64 varint at `offset` (ten bytes if negative); returns the offset after it. */
export function writeInt64(out: Buffer, offset: number, n: bigint): number {
  if (n >= 0n && n <= MAX_SAFE) return writeVarint(out, offset, Number(n));
  let [lo, hi] = halves(n);
  let o = offset;
  while (hi > 0 || lo >= 0x80) {
    out[o++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out[o++] = lo;
  return o;
}

/** Size of an int64 field with its tag (one byte: field numbers here are below 16); 0 if the value is 0. */
export function int64FieldSize(n: bigint): number {
  return n === 0n ? 0 : 1 + int64Size(n);
}

/** Writes `n` with its one-byte tag as field `field` (nothing if it is 0); returns the offset after it. */
export function writeInt64Field(out: Buffer, offset: number, field: number, n: bigint): number {
  if (n === 0n) return offset;
  out[offset] = (field << 3) | VARINT;
  return writeInt64(out, offset + 1, n);
}
