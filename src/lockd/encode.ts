/**
 * The protobuf bytes of the key-values of a large answer, written straight into the answer's one buffer.
 * A full Range of 100,000 keys spent most of lockd's time building a message object per key, encoding it
 * with protobufjs into a buffer per step and copying the steps into the answer (each copy into fresh
 * memory, page faults and all). Here a first pass sizes every record, the answer is allocated once, and
 * a second pass writes each field where it belongs. Only the writing is by hand; the answers are read
 * back with protobufjs in the tests. Fields holding their default (0, empty) are left out, as proto3
 * encoders do.
 */
import { LockdStorageError } from "./errors.js";
import type { Kv } from "./kv.js";
import {
  int64FieldSize,
  LENGTH_DELIMITED,
  varintSize,
  writeInt64Field,
  writeVarint,
} from "./protobuf-write.js";

/** `mvccpb.KeyValue` field numbers. */
const KEY = 1;
const CREATE_REVISION = 2;
const MOD_REVISION = 3;
const VERSION = 4;
const VALUE = 5;
const LEASE = 6;

/** The repeated KeyValue field of each answer built in steps: RangeResponse.kvs, DeleteRangeResponse.prev_kvs. */
const FIELD_NUMBERS = { kvs: 2, prev_kvs: 3 } as const;

/** Size of the KeyValue message of `kv` (its value left out if `keysOnly`), without tag and length. */
export function keyValueSize(kv: Kv, keysOnly: boolean): number {
  const valueBytes = keysOnly ? 0 : kv.size;
  return (
    (kv.key.length === 0 ? 0 : 1 + varintSize(kv.key.length) + kv.key.length) +
    int64FieldSize(kv.createRev) +
    int64FieldSize(kv.modRev) +
    int64FieldSize(kv.version) +
    (valueBytes === 0 ? 0 : 1 + varintSize(valueBytes) + valueBytes) +
    int64FieldSize(kv.lease)
  );
}

/** Size of `kv` as one element of the repeated field of an answer: tag, length and message. */
export function keyValueElementSize(bodySize: number): number {
  return 1 + varintSize(bodySize) + bodySize;
}

function checkValueSize(kv: Kv, got: number): void {
  // A shorter or longer value would shift every byte after it: the answer would be corrupt.
  if (got !== kv.size)
    throw new LockdStorageError(
      `the value of a key at revision ${kv.modRev} is ${got} bytes long, its record says ${kv.size}`,
    );
}

/**
 * Writes `kv` at `offset` of `out` as one element of the answer's `field`, its message `bodySize` bytes
 * long (from `keyValueSize`), and returns the offset after it. Without `stored` the value is left out
 * (keys only); a value kept only in SQLite comes from `stored`. Throws `LockdStorageError` if a value is
 * not `kv.size` bytes long.
 */
export function writeKeyValue(
  out: Buffer,
  offset: number,
  field: keyof typeof FIELD_NUMBERS,
  kv: Kv,
  bodySize: number,
  stored: ((kv: Kv) => Buffer) | undefined,
): number {
  out[offset] = (FIELD_NUMBERS[field] << 3) | LENGTH_DELIMITED;
  let o = writeVarint(out, offset + 1, bodySize);
  if (kv.key.length > 0) {
    out[o] = (KEY << 3) | LENGTH_DELIMITED;
    o = writeVarint(out, o + 1, kv.key.length);
    o += out.write(kv.key, o, kv.key.length, "latin1");
  }
  o = writeInt64Field(out, o, CREATE_REVISION, kv.createRev);
  o = writeInt64Field(out, o, MOD_REVISION, kv.modRev);
  o = writeInt64Field(out, o, VERSION, kv.version);
  if (stored !== undefined && kv.size > 0) {
    out[o] = (VALUE << 3) | LENGTH_DELIMITED;
    o = writeVarint(out, o + 1, kv.size);
    if (kv.value !== null) {
      checkValueSize(kv, kv.value.length);
      o += out.write(kv.value, o, kv.size, "latin1");
    } else {
      const bytes = stored(kv);
      checkValueSize(kv, bytes.length);
      o += bytes.copy(out, o);
    }
  }
  return writeInt64Field(out, o, LEASE, kv.lease);
}
