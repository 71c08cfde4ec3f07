/**
 * TypeScript shapes of the etcd v3 messages in `proto/etcd.proto`, as `@grpc/proto-loader` decodes them
 * with the options in `load.ts`: int64/uint64 as decimal strings, bytes as `Buffer`, enums as numbers,
 * defaults filled in, and the name of the set member of each oneof in a field of the oneof's name.
 * When encoding, optional fields may be left out.
 */
import type { WireInt64 } from "./int64.js";

/** Header carried by every response. */
export interface ResponseHeader {
  cluster_id: WireInt64;
  member_id: WireInt64;
  revision: WireInt64;
  raft_term: WireInt64;
}

/** A key with its MVCC metadata. */
export interface KeyValue {
  key: Buffer;
  create_revision: WireInt64;
  mod_revision: WireInt64;
  version: WireInt64;
  value: Buffer;
  lease: WireInt64;
}

/** `Event.EventType`. */
export const EventType = { PUT: 0, DELETE: 1 } as const;

/** A watch event. */
export interface Event {
  type: number;
  kv: KeyValue | null;
  prev_kv: KeyValue | null;
}

/** `RangeRequest.SortOrder`. */
export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
/** `RangeRequest.SortTarget`. */
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;

/** KV.Range request. */
export interface RangeRequest {
  key: Buffer;
  range_end?: Buffer;
  limit?: WireInt64;
  revision?: WireInt64;
  sort_order?: number;
  sort_target?: number;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: WireInt64;
  max_mod_revision?: WireInt64;
  min_create_revision?: WireInt64;
  max_create_revision?: WireInt64;
}

/** KV.Range response. */
export interface RangeResponse {
  header: ResponseHeader | null;
  kvs: KeyValue[];
  more: boolean;
  count: WireInt64;
}

/** KV.Put request. */
export interface PutRequest {
  key: Buffer;
  value?: Buffer;
  lease?: WireInt64;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
}

/** KV.Put response. */
export interface PutResponse {
  header: ResponseHeader | null;
  prev_kv: KeyValue | null;
}

/** KV.DeleteRange request. */
export interface DeleteRangeRequest {
  key: Buffer;
  range_end?: Buffer;
  prev_kv?: boolean;
}

/** KV.DeleteRange response. */
export interface DeleteRangeResponse {
  header: ResponseHeader | null;
  deleted: WireInt64;
  prev_kvs: KeyValue[];
}

/** One operation of a transaction; exactly one field is set. */
export interface RequestOp {
  request_range?: RangeRequest | null;
  request_put?: PutRequest | null;
  request_delete_range?: DeleteRangeRequest | null;
  request_txn?: TxnRequest | null;
  /** On decoded messages: the name of the field that is set. */
  request?: "request_range" | "request_put" | "request_delete_range" | "request_txn";
}

/** One result of a transaction; exactly one field is set. */
export interface ResponseOp {
  response_range?: RangeResponse | null;
  response_put?: PutResponse | null;
  response_delete_range?: DeleteRangeResponse | null;
  response_txn?: TxnResponse | null;
  /** On decoded messages: the name of the field that is set. */
  response?: "response_range" | "response_put" | "response_delete_range" | "response_txn";
}

/** `Compare.CompareResult`. */
export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
/** `Compare.CompareTarget`. */
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

/** A transaction guard. */
export interface Compare {
  result: number;
  target: number;
  key: Buffer;
  version?: WireInt64;
  create_revision?: WireInt64;
  mod_revision?: WireInt64;
  value?: Buffer;
  lease?: WireInt64;
  range_end?: Buffer;
  /** On decoded messages: the name of the target field that is set. */
  target_union?: "version" | "create_revision" | "mod_revision" | "value" | "lease";
}

/** KV.Txn request. */
export interface TxnRequest {
  compare?: Compare[];
  success?: RequestOp[];
  failure?: RequestOp[];
}

/** KV.Txn response. */
export interface TxnResponse {
  header: ResponseHeader | null;
  succeeded: boolean;
  responses: ResponseOp[];
}

/** KV.Compact request. */
export interface CompactionRequest {
  revision: WireInt64;
  physical?: boolean;
}

/** KV.Compact response. */
export interface CompactionResponse {
  header: ResponseHeader | null;
}

/** `WatchCreateRequest.FilterType`. */
export const FilterType = { NOPUT: 0, NODELETE: 1 } as const;

/** Watch: create a watcher. */
export interface WatchCreateRequest {
  key: Buffer;
  range_end?: Buffer;
  start_revision?: WireInt64;
  progress_notify?: boolean;
  filters?: number[];
  prev_kv?: boolean;
  watch_id?: WireInt64;
  fragment?: boolean;
}

/** A message on the Watch stream from client to server; exactly one field is set. */
export interface WatchRequest {
  create_request?: WatchCreateRequest | null;
  cancel_request?: { watch_id: WireInt64 } | null;
  progress_request?: Record<string, never> | null;
  /** On decoded messages: the name of the field that is set. */
  request_union?: "create_request" | "cancel_request" | "progress_request";
}

/** A message on the Watch stream from server to client. */
export interface WatchResponse {
  header: ResponseHeader | null;
  watch_id: WireInt64;
  created: boolean;
  canceled: boolean;
  compact_revision: WireInt64;
  cancel_reason: string;
  fragment: boolean;
  events: Event[];
}

/** Lease.LeaseGrant request. */
export interface LeaseGrantRequest {
  TTL: WireInt64;
  ID?: WireInt64;
}

/** Lease.LeaseGrant response. */
export interface LeaseGrantResponse {
  header: ResponseHeader | null;
  ID: WireInt64;
  TTL: WireInt64;
  error: string;
}

/** Lease.LeaseRevoke request. */
export interface LeaseRevokeRequest {
  ID: WireInt64;
}

/** Lease.LeaseRevoke response. */
export interface LeaseRevokeResponse {
  header: ResponseHeader | null;
}

/** Lease.LeaseKeepAlive stream request. */
export interface LeaseKeepAliveRequest {
  ID: WireInt64;
}

/** Lease.LeaseKeepAlive stream response; TTL ≤ 0 means the lease is gone. */
export interface LeaseKeepAliveResponse {
  header: ResponseHeader | null;
  ID: WireInt64;
  TTL: WireInt64;
}

/** Lease.LeaseTimeToLive request. */
export interface LeaseTimeToLiveRequest {
  ID: WireInt64;
  keys?: boolean;
}

/** Lease.LeaseTimeToLive response; TTL -1 means the lease is gone. */
export interface LeaseTimeToLiveResponse {
  header: ResponseHeader | null;
  ID: WireInt64;
  TTL: WireInt64;
  grantedTTL: WireInt64;
  keys: Buffer[];
}

/** Lease.LeaseLeases response. */
export interface LeaseLeasesResponse {
  header: ResponseHeader | null;
  leases: { ID: WireInt64 }[];
}

/** A cluster member. */
export interface Member {
  ID: WireInt64;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

/** Cluster.MemberList response. */
export interface MemberListResponse {
  header: ResponseHeader | null;
  members: Member[];
}

/** Maintenance.Status response. */
export interface StatusResponse {
  header: ResponseHeader | null;
  version: string;
  dbSize: WireInt64;
  leader: WireInt64;
  raftIndex: WireInt64;
  raftTerm: WireInt64;
  raftAppliedIndex: WireInt64;
  errors: string[];
  dbSizeInUse: WireInt64;
  isLearner: boolean;
}

/** Maintenance.Snapshot response: one chunk of the database file. */
export interface SnapshotResponse {
  header: ResponseHeader | null;
  /** Bytes still to come after this chunk. */
  remaining_bytes: WireInt64;
  blob: Buffer;
}

/** Auth.Authenticate request. */
export interface AuthenticateRequest {
  name: string;
  password: string;
}

/** Auth.Authenticate response. */
export interface AuthenticateResponse {
  header: ResponseHeader | null;
  token: string;
}
