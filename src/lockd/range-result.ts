/**
 * Shapes a Range answer from the keys of a range, exactly as etcd 3.4 does: `count` is every key in the
 * range; the min/max revision filters then prune; a sort target other than KEY sorts ascending unless told
 * otherwise; the limit truncates last and sets `more`.
 *
 * A large answer is built in steps (`encodeInSteps`): each step turns at most `STEP_KEYS` keys into
 * protobuf bytes, then yields to the event loop, so keep-alives and small requests are served between
 * steps. Protobuf appends the repeated fields of concatenated messages, so the steps' bytes followed by
 * the header's are one valid message; it is written behind gRPC's prefix, and gRPC sends it as it is.
 */
import type { KeyValue, RangeRequest } from "../proto/index.js";
import { fromWire, SortOrder, SortTarget, toWire } from "../proto/index.js";
import { keyValueElementSize, keyValueSize, writeKeyValue } from "./encode.js";
import { LockdStorageError } from "./errors.js";
import { frameBuffer, GrpcFrame, PREFIX_BYTES } from "./grpc-frame.js";
import { type Kv, kvToWire, kvValue, type ValueLoader } from "./kv.js";

/** Reads values kept only in SQLite: one at a time, or those of a whole step at once. */
export interface StepLoader {
  one: ValueLoader;
  /**
   * Reads the values of the records of `step` kept only in SQLite (in one go where it can) and gives
   * the bytes of each one's value.
   */
  step(step: Kv[]): (kv: Kv) => Buffer;
}

/** Keys handled in one step of a large request: a few milliseconds of work. */
export const STEP_KEYS = 500;

/** Records sized in one step of a large answer's first pass: sizing is much cheaper than writing. */
const SIZE_STEP_KEYS = 8 * STEP_KEYS;

const waiting: (() => void)[] = [];
let scheduled = false;

function runOneStep(): void {
  const next = waiting.shift();
  if (waiting.length > 0) setImmediate(runOneStep);
  else scheduled = false;
  next?.();
}

/**
 * Lets the event loop serve timers, I/O and other requests before the next step. Steps of all the large
 * requests in flight take turns, one per event-loop iteration, so five concurrent ones delay a
 * keep-alive by one step, not five.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    waiting.push(resolve);
    if (!scheduled) {
      scheduled = true;
      setImmediate(runOneStep);
    }
  });
}

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

/** True if the answer is the range's first keys in key order: no filter, no other order. */
export function plainOrder(req: RangeRequest): boolean {
  const target = req.sort_target ?? SortTarget.KEY;
  const order = req.sort_order ?? SortOrder.NONE;
  const filtered =
    fromWire(req.max_mod_revision) !== 0n ||
    fromWire(req.min_mod_revision) !== 0n ||
    fromWire(req.max_create_revision) !== 0n ||
    fromWire(req.min_create_revision) !== 0n;
  return !filtered && target === SortTarget.KEY && order !== SortOrder.DESCEND;
}

/** The keys of `all` the answer holds, filtered, sorted and limited; `more` if the limit cut. */
function select(req: RangeRequest, all: Kv[], load: ValueLoader): { kvs: Kv[]; more: boolean } {
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
  if (limit > 0n && BigInt(kvs.length) > limit) return { kvs: kvs.slice(0, Number(limit)), more: true };
  return { kvs, more: false };
}

/**
 * The body of a RangeResponse (without header) for `all`, the keys of the range in key order; `count`
 * (default `all.length`) when `all` holds only the first keys of a plain-order answer.
 */
export function rangeResult(
  req: RangeRequest,
  all: Kv[],
  load: ValueLoader,
  count = all.length,
): { kvs: KeyValue[]; more: boolean; count: string } {
  if (req.count_only) return { kvs: [], more: false, count: toWire(BigInt(count)) };
  const { kvs, more } = select(req, all, load);
  return {
    kvs: kvs.map((kv) => kvToWire(kv, load, req.keys_only)),
    more: more || count > all.length,
    count: toWire(BigInt(count)),
  };
}

/**
 * Encodes the key-values of a large answer in steps of `STEP_KEYS`, as elements of `field`, and `tail`
 * (the header and scalar fields, last so that they win) at the end: one buffer behind gRPC's prefix,
 * allocated once, that gRPC sends as it is. A first pass sizes every record, a second writes them,
 * reading the values kept only in SQLite step by step. Rejects with `LockdStorageError` if a value read
 * is not as long as its record.
 */
export async function encodeInSteps(
  kvs: Kv[],
  keysOnly: boolean,
  load: StepLoader,
  field: "kvs" | "prev_kvs",
  tail: Buffer,
): Promise<GrpcFrame> {
  const sizes = new Int32Array(kvs.length);
  let total = tail.length;
  for (let i = 0; i < kvs.length; i++) {
    if (i > 0 && i % SIZE_STEP_KEYS === 0) await nextTurn();
    const size = keyValueSize(kvs[i] as Kv, keysOnly);
    sizes[i] = size;
    total += keyValueElementSize(size);
  }
  const out = frameBuffer(total);
  let offset = PREFIX_BYTES;
  for (let i = 0; i < kvs.length; i += STEP_KEYS) {
    if (i > 0) await nextTurn();
    const end = Math.min(i + STEP_KEYS, kvs.length);
    const stored = keysOnly ? undefined : load.step(kvs.slice(i, end));
    for (let j = i; j < end; j++)
      offset = writeKeyValue(out, offset, field, kvs[j] as Kv, sizes[j] as number, stored);
  }
  offset += tail.copy(out, offset);
  if (offset - PREFIX_BYTES !== total)
    throw new LockdStorageError(`an answer came out ${offset - PREFIX_BYTES} bytes long, sized ${total}`);
  return new GrpcFrame(out);
}

/** A Range answer over many keys, encoded in steps: see `encodeInSteps`. */
export async function encodeRangeInSteps(
  req: RangeRequest,
  all: Kv[],
  load: StepLoader,
  encode: (res: object) => Buffer,
  header: object,
): Promise<GrpcFrame> {
  const count = toWire(BigInt(all.length));
  if (req.count_only) return GrpcFrame.of(encode({ header, count }));
  let source = all;
  if ((req.sort_target ?? SortTarget.KEY) === SortTarget.VALUE) {
    // The sort compares values: read those kept only in SQLite first, a step at a time.
    source = [];
    for (let i = 0; i < all.length; i += STEP_KEYS) {
      for (const kv of all.slice(i, i + STEP_KEYS))
        source.push(kv.value === null ? { ...kv, value: load.one(kv) } : kv);
      await nextTurn();
    }
  }
  const { kvs, more } = select(req, source, load.one);
  return encodeInSteps(kvs, Boolean(req.keys_only), load, "kvs", encode({ header, more, count }));
}
