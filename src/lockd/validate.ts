/**
 * Request checks that need no state, as etcd's gRPC layer makes them before anything is applied:
 * empty keys, flags that contradict each other, transaction size and the rule that one transaction may
 * not write the same key twice. Also lockd's own bounds (enum values, request size).
 */
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from "../proto/index.js";
import { fromWire } from "../proto/index.js";
import { errors } from "./errors.js";
import { type KeyString, keyOf } from "./keys.js";

/** etcd's default `--max-txn-ops`. */
export const MAX_TXN_OPS = 128;

/** Rejects a Range as etcd does: the key must be given; enums must be known. */
export function checkRange(r: RangeRequest): void {
  if (!r.key || r.key.length === 0) throw errors.emptyKey();
  if ((r.sort_order ?? 0) < 0 || (r.sort_order ?? 0) > 2) throw errors.invalidArgument("unknown sort order");
  if ((r.sort_target ?? 0) < 0 || (r.sort_target ?? 0) > 4)
    throw errors.invalidArgument("unknown sort target");
}

/** Rejects a Put as etcd does: key given; no value with ignore_value; no lease with ignore_lease. */
export function checkPut(r: PutRequest): void {
  if (!r.key || r.key.length === 0) throw errors.emptyKey();
  if (r.ignore_value && r.value && r.value.length !== 0) throw errors.valueProvided();
  if (r.ignore_lease && fromWire(r.lease) !== 0n) throw errors.leaseProvided();
}

/** Rejects a DeleteRange without a key. */
export function checkDelete(r: DeleteRangeRequest): void {
  if (!r.key || r.key.length === 0) throw errors.emptyKey();
}

function checkCompare(c: Compare): void {
  if (!c.key || c.key.length === 0) throw errors.emptyKey();
  if (c.result < 0 || c.result > 3) throw errors.invalidArgument("unknown compare result");
  if (c.target < 0 || c.target > 4) throw errors.invalidArgument("unknown compare target");
}

function checkOp(op: RequestOp, budget: number): void {
  if (op.request === "request_range") checkRange(op.request_range as RangeRequest);
  else if (op.request === "request_put") checkPut(op.request_put as PutRequest);
  else if (op.request === "request_delete_range") checkDelete(op.request_delete_range as DeleteRangeRequest);
  else if (op.request === "request_txn") checkOps(op.request_txn as TxnRequest, budget);
  // etcd answers an empty operation so.
  else throw errors.keyNotFound();
}

/**
 * etcd's op budget: a transaction's size is its longest list (compares, then, else); it must fit the
 * budget, and what it leaves is the budget of each nested transaction. So 128 nested transactions leave
 * none of them room for even one operation, and a transaction and its nested ones together stay near
 * the limit instead of multiplying it.
 */
function checkOps(r: TxnRequest, budget: number): void {
  const compare = r.compare ?? [];
  const success = r.success ?? [];
  const failure = r.failure ?? [];
  const size = Math.max(compare.length, success.length, failure.length);
  if (size > budget) throw errors.tooManyOps();
  for (const c of compare) checkCompare(c);
  for (const op of success) checkOp(op, budget - size);
  for (const op of failure) checkOp(op, budget - size);
}

/**
 * Rejects a Txn as etcd does: at most `maxOps` (default `MAX_TXN_OPS`) compares or operations in its
 * longest list, nested transactions counted against what their parent leaves; every key given, every
 * operation valid; and no key written twice in one branch, nor written where it is also deleted.
 */
export function checkTxn(r: TxnRequest, maxOps = MAX_TXN_OPS): void {
  checkOps(r, maxOps);
  const success = r.success ?? [];
  const failure = r.failure ?? [];
  if (!simpleBranch(success)) checkIntervals(success);
  if (!simpleBranch(failure)) checkIntervals(failure);
}

/**
 * True for a branch that cannot write a key twice: no nested transaction, and either no put or one put
 * and no delete. Lock transactions (a put and reads; a delete and reads) are such. Runs on every Txn,
 * so it spares them the sets `checkIntervals` builds.
 */
function simpleBranch(ops: RequestOp[]): boolean {
  let puts = 0;
  let deletes = 0;
  for (const op of ops) {
    if (op.request === "request_put") puts++;
    else if (op.request === "request_delete_range") deletes++;
    else if (op.request !== "request_range") return false;
  }
  return puts === 0 || (puts === 1 && deletes === 0);
}

/** A deleted interval [start, end), or a single key when `end` is undefined. */
interface Deleted {
  start: KeyString;
  end: KeyString | undefined;
}

function hits(dels: Deleted[], key: KeyString): boolean {
  return dels.some((d) => (d.end === undefined ? d.start === key : d.start <= key && key < d.end));
}

/**
 * etcd's duplicate-key rule: a put may not repeat a put of the same branch (a nested transaction's then
 * and else branches may put the same key, only one runs) nor fall in a range deleted at its level or
 * above. Deletes may overlap each other. A range end is compared as bytes, as etcd's interval tree does.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<KeyString>; dels: Deleted[] } {
  const dels: Deleted[] = [];
  for (const op of ops) {
    if (op.request !== "request_delete_range" || !op.request_delete_range) continue;
    const d = op.request_delete_range;
    const end = d.range_end && d.range_end.length > 0 ? keyOf(d.range_end) : undefined;
    dels.push({ start: keyOf(d.key), end });
  }
  const puts = new Set<KeyString>();
  for (const op of ops) {
    if (op.request !== "request_txn" || !op.request_txn) continue;
    const then = checkIntervals(op.request_txn.success ?? []);
    const other = checkIntervals(op.request_txn.failure ?? []);
    for (const k of then.puts) {
      if (puts.has(k) || hits(dels, k)) throw errors.duplicateKey();
      puts.add(k);
    }
    for (const k of other.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || hits(dels, k)) throw errors.duplicateKey();
      puts.add(k);
    }
    dels.push(...then.dels, ...other.dels);
  }
  for (const op of ops) {
    if (op.request !== "request_put" || !op.request_put) continue;
    const k = keyOf(op.request_put.key);
    if (puts.has(k) || hits(dels, k)) throw errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}

/** Bytes of keys and values a request carries: the measure of the request-size bound and the quota. */
export function payloadBytes(r: unknown, depth = 0): number {
  if (depth > 64) throw errors.invalidArgument("request nested too deeply");
  if (typeof r !== "object" || r === null) return typeof r === "string" ? r.length : 0;
  if (Buffer.isBuffer(r)) return r.length;
  // Runs on every request: loops that allocate nothing (no arrays of values, no closures).
  let n = 0;
  if (Array.isArray(r)) {
    for (const x of r) n += payloadBytes(x, depth + 1);
    return n;
  }
  for (const key in r) {
    if (Object.hasOwn(r, key)) n += payloadBytes((r as Record<string, unknown>)[key], depth + 1) + 2;
  }
  return n;
}

/** True if a transaction can write (has a put or a delete anywhere). */
export function txnWrites(r: TxnRequest): boolean {
  const ops = [...(r.success ?? []), ...(r.failure ?? [])];
  return ops.some(
    (op) =>
      op.request === "request_put" ||
      op.request === "request_delete_range" ||
      (op.request === "request_txn" && txnWrites(op.request_txn as TxnRequest)),
  );
}
