/** The few KV requests the mutex and the election send, built in one place. */
import { randomBytes } from "node:crypto";
import { toWire } from "../proto/int64.js";
import {
  CompareResult,
  CompareTarget,
  type RangeRequest,
  SortOrder,
  SortTarget,
  type TxnRequest,
  type TxnResponse,
} from "../proto/types.js";
import type { Transport } from "./transport.js";

/** The byte form of one lock's keys. */
export interface LockKeys {
  /** `<name>/` */
  prefix: Buffer;
  /** The end of the prefix range. */
  rangeEnd: Buffer;
  /** `<name>/<leaseId hex>` */
  key: Buffer;
}

/** The oldest key of the lock (lowest create revision): the holder. */
export function oldestRange(keys: LockKeys): RangeRequest {
  return {
    key: keys.prefix,
    range_end: keys.rangeEnd,
    sort_order: SortOrder.ASCEND,
    sort_target: SortTarget.CREATE,
    limit: "1",
  };
}

/** The newest key created before `revision`: the waiter's predecessor. */
export function predecessorRange(keys: LockKeys, revision: bigint): RangeRequest {
  return {
    key: keys.prefix,
    range_end: keys.rangeEnd,
    sort_order: SortOrder.DESCEND,
    sort_target: SortTarget.CREATE,
    max_create_revision: toWire(revision - 1n),
    limit: "1",
  };
}

const processNonce = randomBytes(6).toString("hex");
let attempts = 0;

/** A value unique to this attempt: tells its key from one left by an earlier attempt of the same session. */
export function attemptNonce(): Buffer {
  attempts++;
  return Buffer.from(`${processNonce}-${attempts}`);
}

/**
 * Put-if-absent plus get-the-oldest in one transaction. Success: [put, oldest]. Failure (the key
 * exists): [our key, oldest]. Safe to send twice: a repeat takes the failure branch and reads back the key
 * the first one created (same nonce). The predecessor is read only when needed, which keeps the
 * uncontended path as small as etcd allows.
 */
export function acquireTxn(keys: LockKeys, leaseId: bigint, nonce: Buffer): TxnRequest {
  return {
    compare: [
      { result: CompareResult.EQUAL, target: CompareTarget.CREATE, key: keys.key, create_revision: "0" },
    ],
    success: [
      { request_put: { key: keys.key, value: nonce, lease: toWire(leaseId) } },
      { request_range: oldestRange(keys) },
    ],
    failure: [{ request_range: { key: keys.key } }, { request_range: oldestRange(keys) }],
  };
}

/** Reads the predecessor only while our key still has create revision `revision`. */
export function predecessorTxn(keys: LockKeys, revision: bigint): TxnRequest {
  return {
    compare: [ownKeyIs(keys, revision)],
    success: [{ request_range: predecessorRange(keys, revision) }],
  };
}

/** Deletes our key only if it is the one with create revision `revision`: never a newer key. */
export function deleteIfTxn(keys: LockKeys, revision: bigint): TxnRequest {
  return {
    compare: [ownKeyIs(keys, revision)],
    success: [{ request_delete_range: { key: keys.key } }],
  };
}

/** Put-if-absent of an election candidate's key; on failure, read it back. A repeat reads our own key. */
export function campaignTxn(keys: LockKeys, leaseId: bigint, value: Buffer): TxnRequest {
  return {
    compare: [
      { result: CompareResult.EQUAL, target: CompareTarget.CREATE, key: keys.key, create_revision: "0" },
    ],
    success: [{ request_put: { key: keys.key, value, lease: toWire(leaseId) } }],
    failure: [{ request_range: { key: keys.key } }],
  };
}

/**
 * Puts `value` on our key only while it has create revision `revision` (`proclaim()`, and a campaign
 * taking over its own stale key). A candidate whose key still has it still leads, if it led: nobody can
 * create an older key.
 */
export function putIfTxn(keys: LockKeys, revision: bigint, leaseId: bigint, value: Buffer): TxnRequest {
  return {
    compare: [ownKeyIs(keys, revision)],
    success: [{ request_put: { key: keys.key, value, lease: toWire(leaseId) } }],
  };
}

function ownKeyIs(keys: LockKeys, revision: bigint) {
  return {
    result: CompareResult.EQUAL,
    target: CompareTarget.CREATE,
    key: keys.key,
    create_revision: toWire(revision),
  };
}

/** Sends a transaction (every transaction here is safe to repeat). */
export function txn(transport: Transport, request: TxnRequest, signal?: AbortSignal, deadline?: number) {
  return transport.unary<TxnResponse>("KV", "Txn", request, { signal, deadline, idempotent: true });
}
