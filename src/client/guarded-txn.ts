/**
 * The etcd guard: a transaction on data kept in the same etcd as the lock, which commits only while the lock
 * key still has the holder's create revision (its token). That compare is etcd's `Mutex.IsOwner`, taken
 * with the revision the holder was granted rather than mere existence of a key of that name, so a key
 * re-created by a later attempt of the same lease does not pass for the old holder.
 */
import { fromWire, toWire } from "../proto/int64.js";
import {
  CompareResult,
  CompareTarget,
  type KeyValue,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
} from "../proto/types.js";
import { InvalidArgumentError } from "./errors.js";
import { prefixRangeEnd } from "./keys.js";

/** Key or value bytes: a string is taken as UTF-8. */
export type Bytes = string | Uint8Array;

/** One operation of a guarded transaction. `prefix` makes a get or delete cover every key starting with `key`. */
export type GuardedOp =
  | { put: { key: Bytes; value: Bytes } }
  | { delete: { key: Bytes; prefix?: boolean } }
  | { get: { key: Bytes; prefix?: boolean } };

/** A key as a guarded get returns it. */
export interface GuardedKeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
}

/** The result of one operation, in the order the operations were given. */
export type GuardedOpResult =
  | { op: "put" }
  | { op: "delete"; deleted: bigint }
  | { op: "get"; kvs: GuardedKeyValue[] };

/** A committed guarded transaction: the revision it committed at and each operation's result. */
export interface GuardedTxnResult {
  revision: bigint;
  results: GuardedOpResult[];
}

/** The most operations one guarded transaction takes: etcd's default `--max-txn-ops`. */
export const MAX_GUARDED_OPS = 128;

/** The bytes of a key or value; throws `InvalidArgumentError` for anything else. */
export function bytes(b: unknown, what: string): Buffer {
  if (typeof b === "string") return Buffer.from(b, "utf8");
  if (b instanceof Uint8Array) return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  throw new InvalidArgumentError(`${what} must be a string or bytes`);
}

function keyOf(b: unknown, lockPrefix: Buffer): Buffer {
  const key = bytes(b, "key");
  if (key.length === 0) throw new InvalidArgumentError("key must not be empty");
  // Writing into the lock's own queue would corrupt the lock it is guarded by.
  if (key.subarray(0, lockPrefix.length).equals(lockPrefix)) {
    throw new InvalidArgumentError(
      `key ${key.toString()} is inside the lock's own prefix ${lockPrefix.toString()}`,
    );
  }
  return key;
}

function requestOf(op: GuardedOp, lockPrefix: Buffer): RequestOp {
  if (typeof op !== "object" || op === null) throw new InvalidArgumentError("an operation must be an object");
  if ("put" in op) {
    return { request_put: { key: keyOf(op.put?.key, lockPrefix), value: bytes(op.put.value, "value") } };
  }
  if ("delete" in op) {
    const key = keyOf(op.delete?.key, lockPrefix);
    return { request_delete_range: { key, range_end: op.delete.prefix ? prefixRangeEnd(key) : undefined } };
  }
  if ("get" in op) {
    const key = keyOf(op.get?.key, lockPrefix);
    return { request_range: { key, range_end: op.get.prefix ? prefixRangeEnd(key) : undefined } };
  }
  throw new InvalidArgumentError("an operation is { put }, { delete } or { get }");
}

/** The Txn request: the ownership compare, then the operations. Throws `InvalidArgumentError` for bad ones. */
export function guardedTxnRequest(
  lockKey: Buffer,
  lockPrefix: Buffer,
  token: bigint,
  ops: GuardedOp[],
): TxnRequest {
  if (!Array.isArray(ops) || ops.length === 0) throw new InvalidArgumentError("pass at least one operation");
  if (ops.length > MAX_GUARDED_OPS) {
    throw new InvalidArgumentError(`a guarded transaction takes at most ${MAX_GUARDED_OPS} operations`);
  }
  return {
    compare: [
      {
        result: CompareResult.EQUAL,
        target: CompareTarget.CREATE,
        key: lockKey,
        create_revision: toWire(token),
      },
    ],
    success: ops.map((op) => requestOf(op, lockPrefix)),
  };
}

function kvOf(kv: KeyValue): GuardedKeyValue {
  return {
    key: kv.key,
    value: kv.value,
    createRevision: fromWire(kv.create_revision),
    modRevision: fromWire(kv.mod_revision),
    version: fromWire(kv.version),
  };
}

/** The results of a committed guarded transaction, one per operation. */
export function guardedResults(responses: ResponseOp[]): GuardedOpResult[] {
  return responses.map((r): GuardedOpResult => {
    if (r.response_put) return { op: "put" };
    if (r.response_delete_range) return { op: "delete", deleted: fromWire(r.response_delete_range.deleted) };
    return { op: "get", kvs: (r.response_range?.kvs ?? []).map(kvOf) };
  });
}
