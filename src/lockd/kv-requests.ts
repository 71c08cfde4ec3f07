/**
 * The request decoders of Range, Put, DeleteRange and Txn. The bytes are parsed by protobufjs, the
 * library gRPC's loader parses them with; only the step after changes. The loader turns each decoded
 * message into a plain object with every default filled in, and makes each default afresh: a `Long` and
 * its decimal string for every int64 a request leaves out, a new empty `Buffer` for every bytes field. A
 * lock's Txn carries three ranges with six int64s each, so its decoding took 6 to 8 µs, of which the
 * parse was 1.4. Here the same objects come out (the tests compare them with the loader's, field by field)
 * with defaults shared: "0", one empty buffer. Int64s are converted as `kv-answers.ts` writes them back:
 * through a number where that is exact, else through a `bigint` (`src/proto/decoded.ts`).
 */
import {
  decodedBytes as bytes,
  type Decoded,
  decodedInt64 as int64,
  decodedList as list,
} from "../proto/decoded.js";
import type {
  Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from "../proto/index.js";
import { etcdProtobufRoot } from "../proto/protobuf-root.js";

function range(m: Decoded): RangeRequest {
  return {
    key: bytes(m.key),
    range_end: bytes(m.range_end),
    limit: int64(m.limit),
    revision: int64(m.revision),
    sort_order: m.sort_order as number,
    sort_target: m.sort_target as number,
    serializable: m.serializable as boolean,
    keys_only: m.keys_only as boolean,
    count_only: m.count_only as boolean,
    min_mod_revision: int64(m.min_mod_revision),
    max_mod_revision: int64(m.max_mod_revision),
    min_create_revision: int64(m.min_create_revision),
    max_create_revision: int64(m.max_create_revision),
  };
}

function put(m: Decoded): PutRequest {
  return {
    key: bytes(m.key),
    value: bytes(m.value),
    lease: int64(m.lease),
    prev_kv: m.prev_kv as boolean,
    ignore_value: m.ignore_value as boolean,
    ignore_lease: m.ignore_lease as boolean,
  };
}

function deleteRange(m: Decoded): DeleteRangeRequest {
  return { key: bytes(m.key), range_end: bytes(m.range_end), prev_kv: m.prev_kv as boolean };
}

/** Sets each member of a oneof that `m` sent, converted, and names the last in field order in `oneof`. */
function members(
  m: Decoded,
  out: Record<string, unknown>,
  oneof: string,
  fields: readonly (readonly [name: string, convert: (v: unknown) => unknown])[],
): void {
  for (const [name, convert] of fields) {
    if (!Object.hasOwn(m, name) || m[name] == null) continue;
    out[name] = convert(m[name]);
    out[oneof] = name;
  }
}

// A oneof's members are left out unless sent. A message may send more than one (the wire allows it);
// then, as with the loader, each sent member is kept and the oneof names the last in field order.
const COMPARE_TARGETS = [
  ["version", int64],
  ["create_revision", int64],
  ["mod_revision", int64],
  ["value", bytes],
  ["lease", int64],
] as const;

const REQUESTS = [
  ["request_range", (v: unknown) => range(v as Decoded)],
  ["request_put", (v: unknown) => put(v as Decoded)],
  ["request_delete_range", (v: unknown) => deleteRange(v as Decoded)],
  ["request_txn", (v: unknown) => txn(v as Decoded)],
] as const;

function compare(m: Decoded): Compare {
  const c: Compare = {
    result: m.result as number,
    target: m.target as number,
    key: bytes(m.key),
    range_end: bytes(m.range_end),
  };
  members(m, c as unknown as Record<string, unknown>, "target_union", COMPARE_TARGETS);
  return c;
}

function op(m: Decoded): RequestOp {
  const o: RequestOp = {};
  members(m, o as Record<string, unknown>, "request", REQUESTS);
  return o;
}

function txn(m: Decoded): TxnRequest {
  return { compare: list(m.compare, compare), success: list(m.success, op), failure: list(m.failure, op) };
}

/** The KV methods whose requests are decoded here. */
export type KvRequestMethod = "Range" | "Put" | "DeleteRange" | "Txn";

const CONVERTERS: Record<KvRequestMethod, [type: string, convert: (m: Decoded) => object]> = {
  Range: ["RangeRequest", range],
  Put: ["PutRequest", put],
  DeleteRange: ["DeleteRangeRequest", deleteRange],
  Txn: ["TxnRequest", txn],
};

/**
 * The request decoders of the four KV methods: each takes a gRPC message's bytes and returns the request
 * as gRPC's loader would (options in `src/proto/load.ts`). A decoder throws protobufjs's error on bytes
 * that are no such message, as the loader's does, and gRPC answers the call with its own status.
 * A second call returns new decoders over the same parsed `.proto`.
 */
export function kvRequestDecoders(): Record<KvRequestMethod, (bytes: Buffer) => object> {
  const root = etcdProtobufRoot();
  const decoders = {} as Record<KvRequestMethod, (bytes: Buffer) => object>;
  for (const [method, [name, convert]] of Object.entries(CONVERTERS)) {
    const type = root.lookupType(`etcdserverpb.${name}`);
    decoders[method as KvRequestMethod] = (b) => convert(type.decode(b) as unknown as Decoded);
  }
  return decoders;
}
