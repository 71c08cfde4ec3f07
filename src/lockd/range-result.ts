/**
 * Shapes a Range answer from the keys of a range, exactly as etcd 3.4 does: `count` is every key in the
 * range; the min/max revision filters then prune; a sort target other than KEY sorts ascending unless told
 * otherwise; the limit truncates last and sets `more`.
 */
import type { KeyValue, RangeRequest } from "../proto/index.js";
import { fromWire, SortOrder, SortTarget, toWire } from "../proto/index.js";
import { type Kv, kvToWire, kvValue, type ValueLoader } from "./kv.js";

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function comparator(target: number, load: ValueLoader): (a: Kv, b: Kv) => number {
  switch (target) {
    case SortTarget.VERSION:
      return (a, b) => cmpBig(a.version, b.version);
    case SortTarget.CREATE:
      return (a, b) => cmpBig(a.createRev, b.createRev);
    case SortTarget.MOD:
      return (a, b) => cmpBig(a.modRev, b.modRev);
    case SortTarget.VALUE:
      return (a, b) => {
        const x = kvValue(a, load);
        const y = kvValue(b, load);
        return x < y ? -1 : x > y ? 1 : 0;
      };
    default:
      return (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }
}

/** The body of a RangeResponse (without header) for `all`, the keys of the range in key order. */
export function rangeResult(
  req: RangeRequest,
  all: Kv[],
  load: ValueLoader,
): { kvs: KeyValue[]; more: boolean; count: string } {
  const count = toWire(BigInt(all.length));
  if (req.count_only) return { kvs: [], more: false, count };
  const maxMod = fromWire(req.max_mod_revision);
  const minMod = fromWire(req.min_mod_revision);
  const maxCreate = fromWire(req.max_create_revision);
  const minCreate = fromWire(req.min_create_revision);
  let kvs = all;
  if (maxMod !== 0n || minMod !== 0n || maxCreate !== 0n || minCreate !== 0n) {
    kvs = kvs.filter(
      (kv) =>
        !(maxMod !== 0n && kv.modRev > maxMod) &&
        !(minMod !== 0n && kv.modRev < minMod) &&
        !(maxCreate !== 0n && kv.createRev > maxCreate) &&
        !(minCreate !== 0n && kv.createRev < minCreate),
    );
  }
  const target = req.sort_target ?? SortTarget.KEY;
  let order = req.sort_order ?? SortOrder.NONE;
  if (target !== SortTarget.KEY && order === SortOrder.NONE) order = SortOrder.ASCEND;
  if (order !== SortOrder.NONE) {
    const cmp = comparator(target, load);
    kvs = kvs === all ? [...kvs] : kvs;
    // Array sort is stable: equal elements keep key order, as Go's sort does on small inputs.
    kvs.sort(order === SortOrder.DESCEND ? (a, b) => cmp(b, a) : cmp);
  }
  const limit = fromWire(req.limit);
  let more = false;
  if (limit > 0n && BigInt(kvs.length) > limit) {
    kvs = kvs.slice(0, Number(limit));
    more = true;
  }
  return { kvs: kvs.map((kv) => kvToWire(kv, load, req.keys_only)), more, count };
}
