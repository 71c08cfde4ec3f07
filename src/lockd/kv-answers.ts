/**
 * The protobuf bytes of KV answers (Range, Put, DeleteRange, Txn), written by hand as `encode.ts` writes
 * the key-values of large ones. gRPC's encoder (protobufjs) builds a message object for every header,
 * key and operation of an answer and parses each decimal int64 back into a `Long`, several objects per
 * field: during 1,000 lock takes at once that was 6% of lockd's busy time, and `Long`s (from it and from
 * the request decoder) 8% of all lockd allocated. Here a first pass sizes each nested message (in order,
 * in an array), and a second writes the answer into one buffer. Fields holding their default (0, false, empty) are left out, as proto3
 * encoders and etcd do; a message field that is set is written even when empty, as protobufjs does.
 */
import type {
  DeleteRangeResponse,
  KeyValue,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
  WireInt64,
} from "../proto/index.js";
import {
  int64Size,
  LENGTH_DELIMITED,
  VARINT,
  varintSize,
  writeInt64,
  writeVarint,
} from "./protobuf-write.js";

/** An int64 written through a number: its value if it has at most 15 digits and is not negative, else -1. */
function small(s: WireInt64): number {
  if (s.length > 15) return -1;
  const n = Number(s);
  return Number.isInteger(n) && n >= 0 ? n : -1;
}

/**
 * The varints of the other int64s, by their decimal string. These are the cluster and member IDs of
 * every header and the lease IDs of keys: few values, met over and over, each of which took a `bigint`
 * and its halves twice per answer (sizing and writing), 2% of what lockd allocated during lock takes.
 */
const bigVarints = new Map<string, Buffer>();
const BIG_VARINTS_KEPT = 1024;

function bigVarint(s: WireInt64): Buffer {
  let b = bigVarints.get(s);
  if (b === undefined) {
    // A string that is no integer throws here.
    const v = BigInt(s);
    b = Buffer.alloc(int64Size(v));
    writeInt64(b, 0, v);
    if (bigVarints.size >= BIG_VARINTS_KEPT) bigVarints.clear();
    bigVarints.set(s, b);
  }
  return b;
}

function isZero(s: WireInt64 | null | undefined): boolean {
  return s === undefined || s === null || s === "" || s === "0";
}

/** Size of an int64 field with its one-byte tag (every field number here is below 16); 0 if it is 0. */
function intField(s: WireInt64 | null | undefined): number {
  if (isZero(s)) return 0;
  const n = small(s as WireInt64);
  return 1 + (n >= 0 ? varintSize(n) : bigVarint(s as WireInt64).length);
}

function bytesField(b: Buffer | null | undefined): number {
  return !b || b.length === 0 ? 0 : 1 + varintSize(b.length) + b.length;
}

/** Sizes of the nested messages of one answer, in the order the writing pass meets them. */
type Sizes = number[];

/** Sizes a nested message (recording its size before its own nested ones'); returns the field's size. */
function nested<T>(sizes: Sizes, m: T, body: (m: T, sizes: Sizes) => number): number {
  const i = sizes.length;
  sizes.push(0);
  const n = body(m, sizes);
  sizes[i] = n;
  return 1 + varintSize(n) + n;
}

function headerSize(h: ResponseHeader): number {
  return intField(h.cluster_id) + intField(h.member_id) + intField(h.revision) + intField(h.raft_term);
}

function keyValueSize(kv: KeyValue): number {
  return (
    bytesField(kv.key) +
    intField(kv.create_revision) +
    intField(kv.mod_revision) +
    intField(kv.version) +
    bytesField(kv.value) +
    intField(kv.lease)
  );
}

function rangeSize(r: RangeResponse, sizes: Sizes): number {
  let n = r.header ? nested(sizes, r.header, headerSize) : 0;
  for (const kv of r.kvs ?? []) n += nested(sizes, kv, keyValueSize);
  return n + (r.more ? 2 : 0) + intField(r.count);
}

function putSize(r: PutResponse, sizes: Sizes): number {
  return (
    (r.header ? nested(sizes, r.header, headerSize) : 0) +
    (r.prev_kv ? nested(sizes, r.prev_kv, keyValueSize) : 0)
  );
}

function deleteSize(r: DeleteRangeResponse, sizes: Sizes): number {
  let n = (r.header ? nested(sizes, r.header, headerSize) : 0) + intField(r.deleted);
  for (const kv of r.prev_kvs ?? []) n += nested(sizes, kv, keyValueSize);
  return n;
}

function opSize(op: ResponseOp, sizes: Sizes): number {
  if (op.response_range) return nested(sizes, op.response_range, rangeSize);
  if (op.response_put) return nested(sizes, op.response_put, putSize);
  if (op.response_delete_range) return nested(sizes, op.response_delete_range, deleteSize);
  if (op.response_txn) return nested(sizes, op.response_txn, txnSize);
  return 0;
}

function txnSize(r: TxnResponse, sizes: Sizes): number {
  let n = (r.header ? nested(sizes, r.header, headerSize) : 0) + (r.succeeded ? 2 : 0);
  for (const op of r.responses ?? []) n += nested(sizes, op, opSize);
  return n;
}

/** The answer being written: its buffer, the offset reached, and the next nested size to use. */
interface Out {
  buf: Buffer;
  o: number;
  sizes: Sizes;
  next: number;
}

function tag(out: Out, field: number, wireType: number): void {
  out.buf[out.o++] = (field << 3) | wireType;
}

function writeInt(out: Out, field: number, s: WireInt64 | null | undefined): void {
  if (isZero(s)) return;
  tag(out, field, VARINT);
  const n = small(s as WireInt64);
  out.o = n >= 0 ? writeVarint(out.buf, out.o, n) : out.o + bigVarint(s as WireInt64).copy(out.buf, out.o);
}

function writeBytes(out: Out, field: number, b: Buffer | null | undefined): void {
  if (!b || b.length === 0) return;
  tag(out, field, LENGTH_DELIMITED);
  out.o = writeVarint(out.buf, out.o, b.length);
  out.o += b.copy(out.buf, out.o);
}

function writeTrue(out: Out, field: number, value: boolean | null | undefined): void {
  if (!value) return;
  tag(out, field, VARINT);
  out.buf[out.o++] = 1;
}

function writeNested<T>(out: Out, field: number, m: T, body: (out: Out, m: T) => void): void {
  tag(out, field, LENGTH_DELIMITED);
  out.o = writeVarint(out.buf, out.o, out.sizes[out.next++] as number);
  body(out, m);
}

function writeHeader(out: Out, h: ResponseHeader): void {
  writeInt(out, 1, h.cluster_id);
  writeInt(out, 2, h.member_id);
  writeInt(out, 3, h.revision);
  writeInt(out, 4, h.raft_term);
}

function writeKeyValue(out: Out, kv: KeyValue): void {
  writeBytes(out, 1, kv.key);
  writeInt(out, 2, kv.create_revision);
  writeInt(out, 3, kv.mod_revision);
  writeInt(out, 4, kv.version);
  writeBytes(out, 5, kv.value);
  writeInt(out, 6, kv.lease);
}

function writeRange(out: Out, r: RangeResponse): void {
  if (r.header) writeNested(out, 1, r.header, writeHeader);
  for (const kv of r.kvs ?? []) writeNested(out, 2, kv, writeKeyValue);
  writeTrue(out, 3, r.more);
  writeInt(out, 4, r.count);
}

function writePut(out: Out, r: PutResponse): void {
  if (r.header) writeNested(out, 1, r.header, writeHeader);
  if (r.prev_kv) writeNested(out, 2, r.prev_kv, writeKeyValue);
}

function writeDelete(out: Out, r: DeleteRangeResponse): void {
  if (r.header) writeNested(out, 1, r.header, writeHeader);
  writeInt(out, 2, r.deleted);
  for (const kv of r.prev_kvs ?? []) writeNested(out, 3, kv, writeKeyValue);
}

function writeOp(out: Out, op: ResponseOp): void {
  if (op.response_range) writeNested(out, 1, op.response_range, writeRange);
  else if (op.response_put) writeNested(out, 2, op.response_put, writePut);
  else if (op.response_delete_range) writeNested(out, 3, op.response_delete_range, writeDelete);
  else if (op.response_txn) writeNested(out, 4, op.response_txn, writeTxn);
}

function writeTxn(out: Out, r: TxnResponse): void {
  if (r.header) writeNested(out, 1, r.header, writeHeader);
  writeTrue(out, 2, r.succeeded);
  for (const op of r.responses ?? []) writeNested(out, 3, op, writeOp);
}

/** The KV methods whose answers are written here. */
export type KvAnswerMethod = "Range" | "Put" | "DeleteRange" | "Txn";

const WRITERS = {
  Range: [rangeSize, writeRange],
  Put: [putSize, writePut],
  DeleteRange: [deleteSize, writeDelete],
  Txn: [txnSize, writeTxn],
} as const;

/**
 * The protobuf bytes of an answer of `method`. Throws if an int64 field holds no decimal integer, or if
 * the bytes written come out longer or shorter than sized (a bug here, never a corrupt answer).
 */
export function encodeKvAnswer(method: KvAnswerMethod, res: object): Buffer {
  const [size, write] = WRITERS[method] as unknown as [
    (m: object, sizes: Sizes) => number,
    (out: Out, m: object) => void,
  ];
  const sizes: Sizes = [];
  const n = size(res, sizes);
  const out: Out = { buf: Buffer.allocUnsafe(n), o: 0, sizes, next: 0 };
  write(out, res);
  if (out.o !== n || out.next !== sizes.length)
    throw new Error(`lockd: a ${method} answer came out ${out.o} bytes long, sized ${n}`);
  return out.buf;
}
