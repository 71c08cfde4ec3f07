/**
 * The client's decoders of the answers it reads most: KV's four methods, a lease's grant, revoke and
 * keep-alive, and watch events. The bytes are parsed by protobufjs, as gRPC's loader parses them; only
 * the step after changes. The loader turns each decoded message into a plain object with every default
 * made afresh and every int64 turned into a string through `Long`'s base-10 loop, so decoding a lock's
 * Txn answer took about three times as long as here (`npm run bench:lockd-codec`). Here the same objects
 * come out (the tests compare them with the loader's, field by field, for random answers) with defaults
 * shared (see `src/proto/decoded.ts`).
 * The other methods' answers, read rarely, keep the loader's decoder.
 */
import {
  decodedBytes as bytes,
  type Decoded,
  decodedInt64 as int64,
  decodedList as list,
} from "../proto/decoded.js";
import { etcdProtobufRoot } from "../proto/protobuf-root.js";
import type {
  DeleteRangeResponse,
  Event,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseRevokeResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
  WatchResponse,
} from "../proto/types.js";

/** A message field: converted if sent, else null (protobufjs's default of a message field, and the loader's). */
function sub<T>(m: Decoded, name: string, convert: (v: Decoded) => T): T | null {
  const v = m[name];
  return v == null ? null : convert(v as Decoded);
}

function header(m: Decoded): ResponseHeader {
  return {
    cluster_id: int64(m.cluster_id),
    member_id: int64(m.member_id),
    revision: int64(m.revision),
    raft_term: int64(m.raft_term),
  };
}

function keyValue(m: Decoded): KeyValue {
  return {
    key: bytes(m.key),
    create_revision: int64(m.create_revision),
    mod_revision: int64(m.mod_revision),
    version: int64(m.version),
    value: bytes(m.value),
    lease: int64(m.lease),
  };
}

function range(m: Decoded): RangeResponse {
  return {
    header: sub(m, "header", header),
    kvs: list(m.kvs, keyValue),
    more: m.more as boolean,
    count: int64(m.count),
  };
}

function put(m: Decoded): PutResponse {
  return { header: sub(m, "header", header), prev_kv: sub(m, "prev_kv", keyValue) };
}

function deleteRange(m: Decoded): DeleteRangeResponse {
  return {
    header: sub(m, "header", header),
    deleted: int64(m.deleted),
    prev_kvs: list(m.prev_kvs, keyValue),
  };
}

// A oneof's members are left out unless sent. An answer may send more than one (the wire allows it);
// then, as with the loader, each sent member is kept and the oneof names the last in field order.
// Written out member by member: a loop over the names read the message by computed keys, slower.
function op(m: Decoded): ResponseOp {
  const o: ResponseOp = {};
  if (m.response_range != null) {
    o.response_range = range(m.response_range as Decoded);
    o.response = "response_range";
  }
  if (m.response_put != null) {
    o.response_put = put(m.response_put as Decoded);
    o.response = "response_put";
  }
  if (m.response_delete_range != null) {
    o.response_delete_range = deleteRange(m.response_delete_range as Decoded);
    o.response = "response_delete_range";
  }
  if (m.response_txn != null) {
    o.response_txn = txn(m.response_txn as Decoded);
    o.response = "response_txn";
  }
  return o;
}

function txn(m: Decoded): TxnResponse {
  return {
    header: sub(m, "header", header),
    succeeded: m.succeeded as boolean,
    responses: list(m.responses, op),
  };
}

function leaseGrant(m: Decoded): LeaseGrantResponse {
  return { header: sub(m, "header", header), ID: int64(m.ID), TTL: int64(m.TTL), error: m.error as string };
}

function leaseRevoke(m: Decoded): LeaseRevokeResponse {
  return { header: sub(m, "header", header) };
}

function leaseKeepAlive(m: Decoded): LeaseKeepAliveResponse {
  return { header: sub(m, "header", header), ID: int64(m.ID), TTL: int64(m.TTL) };
}

function event(m: Decoded): Event {
  return { type: m.type as number, kv: sub(m, "kv", keyValue), prev_kv: sub(m, "prev_kv", keyValue) };
}

function watch(m: Decoded): WatchResponse {
  return {
    header: sub(m, "header", header),
    watch_id: int64(m.watch_id),
    created: m.created as boolean,
    canceled: m.canceled as boolean,
    compact_revision: int64(m.compact_revision),
    cancel_reason: m.cancel_reason as string,
    fragment: m.fragment as boolean,
    events: list(m.events, event),
  };
}

/** The methods whose answers are decoded here, as "Service.Method", with the answer's message type. */
const CONVERTERS: Record<string, [type: string, convert: (m: Decoded) => object]> = {
  "KV.Range": ["RangeResponse", range],
  "KV.Put": ["PutResponse", put],
  "KV.DeleteRange": ["DeleteRangeResponse", deleteRange],
  "KV.Txn": ["TxnResponse", txn],
  "Lease.LeaseGrant": ["LeaseGrantResponse", leaseGrant],
  "Lease.LeaseRevoke": ["LeaseRevokeResponse", leaseRevoke],
  "Lease.LeaseKeepAlive": ["LeaseKeepAliveResponse", leaseKeepAlive],
  "Watch.Watch": ["WatchResponse", watch],
};

/**
 * The answer decoders, by "Service.Method": each takes a gRPC message's bytes and returns the answer as
 * gRPC's loader would (options in `src/proto/load.ts`), or throws protobufjs's error on bytes that are
 * no such message, as the loader's does (grpc-js then fails the call). A method not listed is left to
 * the loader. A second call returns new decoders over the same parsed `.proto`.
 */
export function answerDecoders(): ReadonlyMap<string, (bytes: Buffer) => object> {
  const root = etcdProtobufRoot();
  const decoders = new Map<string, (bytes: Buffer) => object>();
  for (const [method, [name, convert]] of Object.entries(CONVERTERS)) {
    const type = root.lookupType(`etcdserverpb.${name}`);
    decoders.set(method, (b) => convert(type.decode(b) as unknown as Decoded));
  }
  return decoders;
}
