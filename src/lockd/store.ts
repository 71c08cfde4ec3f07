/**
 * The state of a lockd node: MVCC keys with one global revision, leases, and the write batching that
 * makes every reply wait for its commit. SQLite is the source of truth; the in-memory index (live keys in
 * a Map plus a sorted key list, leases with their keys) is rebuilt from it on start and after a failed
 * commit.
 *
 * Writes of one event-loop turn share one SQLite transaction: the first write opens it, a `setImmediate`
 * commits it, and only then are the replies of that turn (reads included, since they may have seen the
 * uncommitted writes) sent and the watchers told.
 */
import { randomBytes } from "node:crypto";
import type {
  CompactionRequest,
  CompactionResponse,
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from "../proto/index.js";
import { CompareResult, CompareTarget, fromWire, toWire } from "../proto/index.js";
import { LockdDb, type SyncMode } from "./db.js";
import { EtcdError, errors } from "./errors.js";
import { type KeyRange, type KeyString, keyBytes, keyOf, keyRange } from "./keys.js";
import {
  type ChangeEvent,
  DELETE,
  EMPTY,
  INLINE_VALUE_BYTES,
  type Kv,
  kvOfRow,
  kvToWire,
  kvValue,
  PUT,
  type RevisionChanges,
  tombstone,
  type ValueLoader,
} from "./kv.js";
import { rangeResult } from "./range-result.js";
import { SortedKeys } from "./sorted-keys.js";
import {
  checkDelete,
  checkPut,
  checkRange,
  checkTxn,
  MAX_TXN_OPS,
  payloadBytes,
  txnWrites,
} from "./validate.js";

/** etcd's largest lease TTL, in seconds. */
export const MAX_LEASE_TTL = 9_000_000_000n;

/** Limits and tunables of a store. */
export interface StoreOptions {
  /** SQLite file, or `":memory:"`. */
  path: string;
  /** Largest request (keys and values), as etcd's `--max-request-bytes`; default 1.5 MiB. */
  maxRequestBytes?: number;
  /** Largest total size of live keys and values; default 256 MiB. */
  quotaBytes?: number;
  /** Smallest lease TTL granted, in seconds; default 1. */
  minLeaseTtl?: bigint;
  /** Operation budget of a Txn, nested ones included, as etcd's `--max-txn-ops`; default 128. */
  maxTxnOps?: number;
  /** When a commit is durable: see `SyncMode`. Default "full". */
  sync?: SyncMode;
  /**
   * Called if the database cannot even be read back after a failed commit; the store then refuses every
   * request ("server stopped") instead of serving an index it cannot trust.
   */
  onBroken?: (err: unknown) => void;
}

interface LeaseState {
  id: bigint;
  ttl: bigint;
  /** Epoch ms at which the lease expires unless kept alive. */
  expiresAt: number;
  keys: Set<KeyString>;
}

interface Pending {
  resolve(): void;
  reject(err: unknown): void;
}

interface Batch {
  pending: Pending[];
  revisions: RevisionChanges[];
  idle: (() => void)[];
  /** Leases granted or revoked in this batch: their keep-alives wait for the commit. */
  leases: Set<bigint>;
  /** Whether this batch compacts: then reads wait for the commit too. */
  compacts: boolean;
}

/** Which branch each (nested) transaction takes, decided before any operation runs. */
interface Path {
  ok: boolean;
  nested: Path[];
}

/** The changes of one request, all at revision `beginRev + 1`. */
class Writer {
  readonly events: ChangeEvent[] = [];
  /** The revision of this request's changes; one bigint shared by every key it writes. */
  readonly rev: bigint;
  constructor(readonly beginRev: bigint) {
    this.rev = beginRev + 1n;
  }
  /** The revision the key index shows now: including this request's changes, if any. */
  get readRev(): bigint {
    return this.events.length > 0 ? this.rev : this.beginRev;
  }
}

function randomId(): bigint {
  // Positive int64, never 0: lease ids and node ids.
  const id = randomBytes(8).readBigUInt64BE() & 0x7fff_ffff_ffff_ffffn;
  return id === 0n ? 1n : id;
}

function innerHeader(rev: bigint): ResponseHeader {
  return { cluster_id: "0", member_id: "0", revision: toWire(rev), raft_term: "0" };
}

/** The MVCC store and lessor of one node. */
export class Store {
  /** The node's cluster and member ids, and its term (one more on every start). */
  readonly clusterId: bigint;
  readonly memberId: bigint;
  readonly term: bigint;
  /** Called after each commit with the revisions it made durable, in order. */
  onCommit: (revisions: RevisionChanges[]) => void = () => {};

  private readonly db: LockdDb;
  private readonly maxRequestBytes: number;
  private readonly quotaBytes: number;
  private readonly minLeaseTtl: bigint;
  private readonly maxTxnOps: number;
  private readonly onBroken: (err: unknown) => void;
  private readonly live = new Map<KeyString, Kv>();
  private readonly sorted = new SortedKeys();
  private readonly leaseMap = new Map<bigint, LeaseState>();
  private liveBytes = 0;
  private revision = 1n;
  /** The newest revision whose commit has returned: every acknowledged write is at or below it. */
  private committed = 1n;
  private compacted = -1n;
  private batch: Batch | undefined;
  private closed = false;

  /** Opens the database and rebuilds the index from it. Throws `LockdStorageError` if it cannot. */
  constructor(options: StoreOptions) {
    this.db = new LockdDb(options.path, options.sync ?? "full");
    this.maxRequestBytes = options.maxRequestBytes ?? 1.5 * 1024 * 1024;
    this.quotaBytes = options.quotaBytes ?? 256 * 1024 * 1024;
    this.minLeaseTtl = options.minLeaseTtl ?? 1n;
    this.maxTxnOps = options.maxTxnOps ?? MAX_TXN_OPS;
    this.onBroken = options.onBroken ?? (() => {});
    this.db.begin();
    this.clusterId = this.db.meta("cluster_id") ?? randomId();
    this.memberId = this.db.meta("member_id") ?? randomId();
    this.term = (this.db.meta("term") ?? 1n) + 1n;
    this.db.setMeta("cluster_id", this.clusterId);
    this.db.setMeta("member_id", this.memberId);
    this.db.setMeta("term", this.term);
    this.db.commit();
    this.load();
  }

  /** The current revision (including writes whose commit is pending; their replies wait for it). */
  get rev(): bigint {
    return this.revision;
  }

  /** The compacted revision; -1 if never compacted. */
  get compactRev(): bigint {
    return this.compacted;
  }

  /** Number of live keys. */
  get keyCount(): number {
    return this.live.size;
  }

  /** Database size in bytes, total and in use. */
  dbSize(): { total: bigint; inUse: bigint } {
    return this.db.size();
  }

  /** Reads a value that is not kept in memory from the key's row in history (always kept while live). */
  readonly loadValue: ValueLoader = (kv) =>
    this.db.valueAt(keyBytes(kv.key), kv.modRev)?.toString("latin1") ?? "";

  /** A top-level response header at `rev`. */
  header(rev: bigint = this.revision): ResponseHeader {
    return {
      cluster_id: toWire(this.clusterId),
      member_id: toWire(this.memberId),
      revision: toWire(rev),
      raft_term: toWire(this.term),
    };
  }

  private load(): void {
    this.live.clear();
    this.leaseMap.clear();
    this.liveBytes = 0;
    const keys: KeyString[] = [];
    for (const row of this.db.latest()) {
      const kv = kvOfRow(row, false);
      this.live.set(kv.key, kv);
      keys.push(kv.key);
      this.liveBytes += kv.key.length + kv.size;
    }
    this.sorted.reset(keys);
    // The revision is that of the newest history row, or the one recorded when compaction may have
    // removed that row: never lower than any revision ever acknowledged.
    const recorded = this.db.meta("revision") ?? 1n;
    const newest = this.db.newestRev() ?? 0n;
    this.revision = recorded > newest ? recorded : newest;
    this.committed = this.revision;
    this.compacted = this.db.meta("compact_revision") ?? -1n;
    const now = Date.now();
    for (const { id, ttl } of this.db.leases()) {
      // As etcd after a leader change: every lease gets its full TTL again.
      this.leaseMap.set(id, { id, ttl, expiresAt: now + Number(ttl) * 1000, keys: new Set() });
    }
    for (const kv of this.live.values()) {
      if (kv.lease !== 0n) this.leaseMap.get(kv.lease)?.keys.add(kv.key);
    }
  }

  // ---- request plumbing -------------------------------------------------------------------------

  /**
   * Runs `compute` now and resolves with its result once everything it may have seen is committed.
   * An `EtcdError` from `compute` (always thrown before any change) rejects only this request; any other
   * error is a storage failure: the batch is rolled back and every request in it fails.
   */
  private run<T>(compute: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(errors.stopped());
        return;
      }
      let result: T;
      try {
        result = compute();
      } catch (err) {
        if (err instanceof EtcdError) {
          reject(err);
          return;
        }
        this.failBatch(err);
        reject(errors.storageFailed(err));
        return;
      }
      if (this.batch) this.batch.pending.push({ resolve: () => resolve(result), reject });
      else resolve(result);
    });
  }

  /** Runs `fn` once no write is waiting for its commit (now, if none is). */
  whenIdle(fn: () => void): void {
    if (this.batch) this.batch.idle.push(fn);
    else fn();
  }

  private ensureBatch(): Batch {
    if (this.batch) return this.batch;
    this.db.begin();
    const batch: Batch = { pending: [], revisions: [], idle: [], leases: new Set(), compacts: false };
    this.batch = batch;
    setImmediate(() => this.commit(batch));
    return batch;
  }

  private commit(batch: Batch): void {
    if (this.batch !== batch) return;
    try {
      this.db.commit();
    } catch (err) {
      this.failBatch(err);
      return;
    }
    this.batch = undefined;
    this.committed = this.revision;
    this.onCommit(batch.revisions);
    for (const p of batch.pending) p.resolve();
    for (const fn of batch.idle) fn();
  }

  private failBatch(cause: unknown): void {
    const batch = this.batch;
    this.batch = undefined;
    try {
      this.db.rollback();
      this.load();
    } catch (err) {
      this.closed = true;
      this.onBroken(err);
    }
    for (const p of batch?.pending ?? []) p.reject(errors.storageFailed(cause));
    for (const fn of batch?.idle ?? []) fn();
  }

  private finish(w: Writer): void {
    if (w.events.length === 0) return;
    this.revision = w.rev;
    this.ensureBatch().revisions.push({ rev: w.rev, events: w.events });
  }

  private checkSize(req: unknown, puts: boolean): void {
    const size = payloadBytes(req);
    if (size > this.maxRequestBytes) throw errors.requestTooLarge();
    if (puts && this.liveBytes + size > this.quotaBytes) throw errors.noSpace();
  }

  // ---- KV ---------------------------------------------------------------------------------------

  /** The keys of `range` at revision `rev`: from memory if it holds `rev` (`memoryRev`), else from history. */
  private keysAt(range: KeyRange, rev: bigint, memoryRev: bigint): Kv[] {
    if (rev === memoryRev) {
      const out: Kv[] = [];
      for (const key of this.sorted.scan(range)) out.push(this.live.get(key) as Kv);
      return out;
    }
    return this.db.rangeAt(range, rev).map((row) => kvOfRow(row));
  }

  private rangeAt(req: RangeRequest, currentRev: bigint, memoryRev = currentRev): RangeResponse {
    const asked = fromWire(req.revision);
    if (asked > currentRev) throw errors.futureRev();
    const rev = asked > 0n ? asked : currentRev;
    if (rev < this.compacted) throw errors.compacted();
    const all = this.keysAt(keyRange(req.key, req.range_end), rev, memoryRev);
    return { header: innerHeader(currentRev), ...rangeResult(req, all, this.loadValue) };
  }

  /**
   * KV.Range. While writes wait for their commit, a read that does not ask for a newer revision is
   * answered at once from the committed revision (SQLite holds it: every uncommitted row is above it), so
   * reads never wait for a disk sync. That is still linearizable: every acknowledged write is at or
   * below the committed revision.
   */
  range(req: RangeRequest): Promise<RangeResponse> {
    const batch = this.batch;
    if (batch && !batch.compacts && !this.closed && fromWire(req.revision) <= this.committed) {
      try {
        checkRange(req);
        const res = this.rangeAt(req, this.committed, this.revision);
        res.header = this.header(this.committed);
        return Promise.resolve(res);
      } catch (err) {
        return Promise.reject(err instanceof EtcdError ? err : errors.storageFailed(err));
      }
    }
    return this.run(() => {
      checkRange(req);
      const res = this.rangeAt(req, this.revision);
      res.header = this.header();
      return res;
    });
  }

  private putIn(w: Writer, req: PutRequest): PutResponse {
    const key = keyOf(req.key);
    const prev = this.live.get(key);
    const bytes = req.ignore_value
      ? Buffer.from(kvValue(prev as Kv, this.loadValue), "latin1")
      : (req.value ?? EMPTY);
    const asked = req.ignore_lease ? (prev as Kv).lease : fromWire(req.lease);
    // The lease's own id object, so that keys share it.
    const lease = asked === 0n ? 0n : (this.leaseMap.get(asked)?.id ?? asked);
    const kv: Kv = {
      key,
      createRev: prev ? prev.createRev : w.rev,
      modRev: w.rev,
      version: prev ? prev.version + 1n : 1n,
      value: bytes.length <= INLINE_VALUE_BYTES ? bytes.toString("latin1") : null,
      size: bytes.length,
      lease,
    };
    this.ensureBatch();
    this.db.insert({
      key: req.key,
      rev: w.rev,
      sub: BigInt(w.events.length),
      create_rev: kv.createRev,
      version: kv.version,
      value: bytes,
      lease,
    });
    if (prev && prev.lease !== 0n && prev.lease !== lease) this.leaseMap.get(prev.lease)?.keys.delete(key);
    if (lease !== 0n) this.leaseMap.get(lease)?.keys.add(key);
    if (!prev) this.sorted.add(key);
    this.live.set(key, kv);
    this.liveBytes += key.length + kv.size - (prev ? prev.key.length + prev.size : 0);
    w.events.push({ type: PUT, kv, prev });
    return {
      header: innerHeader(w.rev),
      prev_kv: req.prev_kv && prev ? kvToWire(prev, this.loadValue) : null,
    };
  }

  private deleteKeys(w: Writer, keys: KeyString[]): Kv[] {
    const deleted: Kv[] = [];
    if (keys.length > 0) this.ensureBatch();
    for (const key of keys) {
      const prev = this.live.get(key) as Kv;
      this.db.insert({
        key: keyBytes(key),
        rev: w.rev,
        sub: BigInt(w.events.length),
        create_rev: 0n,
        version: 0n,
        value: EMPTY,
        lease: 0n,
      });
      if (prev.lease !== 0n) this.leaseMap.get(prev.lease)?.keys.delete(key);
      this.live.delete(key);
      this.sorted.delete(key);
      this.liveBytes -= key.length + prev.size;
      w.events.push({ type: DELETE, kv: tombstone(key, w.rev), prev });
      deleted.push(prev);
    }
    return deleted;
  }

  private deleteIn(w: Writer, req: DeleteRangeRequest): DeleteRangeResponse {
    const keys = [...this.sorted.scan(keyRange(req.key, req.range_end))];
    const deleted = this.deleteKeys(w, keys);
    return {
      header: innerHeader(w.readRev),
      deleted: toWire(BigInt(deleted.length)),
      prev_kvs: req.prev_kv ? deleted.map((kv) => kvToWire(kv, this.loadValue)) : [],
    };
  }

  /** KV.Put. */
  put(req: PutRequest): Promise<PutResponse> {
    return this.run(() => {
      checkPut(req);
      this.checkSize(req, true);
      const lease = fromWire(req.lease);
      if (lease !== 0n && !this.leaseMap.has(lease)) throw errors.leaseNotFound();
      if ((req.ignore_value || req.ignore_lease) && !this.live.has(keyOf(req.key)))
        throw errors.keyNotFound();
      const w = new Writer(this.revision);
      const res = this.putIn(w, req);
      this.finish(w);
      res.header = this.header(w.rev);
      return res;
    });
  }

  /** KV.DeleteRange. */
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.run(() => {
      checkDelete(req);
      this.checkSize(req, false);
      const w = new Writer(this.revision);
      const res = this.deleteIn(w, req);
      this.finish(w);
      res.header = this.header(w.readRev);
      return res;
    });
  }

  private compareOk(c: Compare): boolean {
    const kvs = [...this.sorted.scan(keyRange(c.key, c.range_end))].map((k) => this.live.get(k) as Kv);
    if (kvs.length === 0) {
      // etcd: a value compare on a missing key always fails; other targets compare against zero.
      if (c.target === CompareTarget.VALUE) return false;
      kvs.push(tombstone("", 0n));
    }
    return kvs.every((kv) => {
      const r = compareTarget(c, kv, this.loadValue);
      switch (c.result) {
        case CompareResult.EQUAL:
          return r === 0;
        case CompareResult.NOT_EQUAL:
          return r !== 0;
        case CompareResult.GREATER:
          return r > 0;
        default:
          return r < 0;
      }
    });
  }

  private choosePath(req: TxnRequest): Path {
    const ok = (req.compare ?? []).every((c) => this.compareOk(c));
    const ops = (ok ? req.success : req.failure) ?? [];
    const nested = ops
      .filter((op) => op.request === "request_txn")
      .map((op) => this.choosePath(op.request_txn as TxnRequest));
    return { ok, nested };
  }

  private checkPuts(req: TxnRequest, path: Path): void {
    let n = 0;
    for (const op of (path.ok ? req.success : req.failure) ?? []) {
      if (op.request === "request_txn")
        this.checkPuts(op.request_txn as TxnRequest, path.nested[n++] as Path);
      if (op.request !== "request_put") continue;
      const put = op.request_put as PutRequest;
      if ((put.ignore_value || put.ignore_lease) && !this.live.has(keyOf(put.key)))
        throw errors.keyNotFound();
      const lease = fromWire(put.lease);
      if (lease !== 0n && !this.leaseMap.has(lease)) throw errors.leaseNotFound();
    }
  }

  private checkRanges(req: TxnRequest, path: Path): void {
    let n = 0;
    for (const op of (path.ok ? req.success : req.failure) ?? []) {
      if (op.request === "request_txn")
        this.checkRanges(op.request_txn as TxnRequest, path.nested[n++] as Path);
      if (op.request !== "request_range") continue;
      const rev = fromWire((op.request_range as RangeRequest).revision);
      if (rev > this.revision) throw errors.futureRev();
      if (rev > 0n && rev < this.compacted) throw errors.compacted();
    }
  }

  private applyOps(w: Writer, ops: RequestOp[], path: Path): ResponseOp[] {
    let n = 0;
    return ops.map((op): ResponseOp => {
      switch (op.request) {
        case "request_range":
          return { response_range: this.rangeAt(op.request_range as RangeRequest, w.readRev) };
        case "request_put":
          return { response_put: this.putIn(w, op.request_put as PutRequest) };
        case "request_delete_range":
          return { response_delete_range: this.deleteIn(w, op.request_delete_range as DeleteRangeRequest) };
        default: {
          const nested = op.request_txn as TxnRequest;
          const p = path.nested[n++] as Path;
          const responses = this.applyOps(w, (p.ok ? nested.success : nested.failure) ?? [], p);
          return { response_txn: { header: innerHeader(0n), succeeded: p.ok, responses } };
        }
      }
    });
  }

  /** KV.Txn: compares, then the chosen branch, all in one revision. */
  txn(req: TxnRequest): Promise<TxnResponse> {
    return this.run(() => {
      checkTxn(req, this.maxTxnOps);
      const writes = txnWrites(req);
      this.checkSize(req, writes);
      const path = this.choosePath(req);
      if (writes) this.checkPuts(req, path);
      this.checkRanges(req, path);
      const w = new Writer(this.revision);
      const responses = this.applyOps(w, (path.ok ? req.success : req.failure) ?? [], path);
      this.finish(w);
      return { header: this.header(w.readRev), succeeded: path.ok, responses };
    });
  }

  /** KV.Compact: forgets history below `revision`. */
  compact(req: CompactionRequest): Promise<CompactionResponse> {
    return this.run(() => {
      const rev = fromWire(req.revision);
      if (rev <= this.compacted) throw errors.compacted();
      if (rev > this.revision) throw errors.futureRev();
      this.compactTo(rev);
      return { header: this.header() };
    });
  }

  private compactTo(rev: bigint): void {
    this.ensureBatch().compacts = true;
    this.db.compact(rev);
    this.db.setMeta("compact_revision", rev);
    this.db.setMeta("revision", this.revision);
    this.compacted = rev;
  }

  /**
   * Compacts so that at most `retention` revisions of history are kept, if more are; resolves once
   * committed. For the periodic auto-compaction.
   */
  autoCompact(retention: bigint): Promise<void> {
    return this.run(() => {
      const target = this.revision - retention;
      if (target > this.compacted && target > 0n) this.compactTo(target);
    });
  }

  /**
   * The changes of revisions [from, to] from history, in order. `withPrev` also looks up each key's
   * previous revision (undefined where compacted away).
   */
  history(from: bigint, to: bigint, withPrev: boolean): RevisionChanges[] {
    const out: RevisionChanges[] = [];
    for (const row of this.db.changes(from, to)) {
      const kv = row.version === 0n ? tombstone(keyOf(row.key), row.rev) : kvOfRow(row);
      let prev: Kv | undefined;
      if (withPrev) {
        const p = this.db.previous(row.key, row.rev);
        prev = p && p.version > 0n ? kvOfRow(p) : undefined;
      }
      const last = out[out.length - 1];
      const ev: ChangeEvent = { type: row.version === 0n ? DELETE : PUT, kv, prev };
      if (last && last.rev === row.rev) last.events.push(ev);
      else out.push({ rev: row.rev, events: [ev] });
    }
    return out;
  }

  // ---- leases -----------------------------------------------------------------------------------

  /** Lease.LeaseGrant: a new lease with the asked ID (0: one is chosen) and TTL (raised to the minimum). */
  grant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    return this.run(() => {
      let ttl = fromWire(req.TTL);
      let id = fromWire(req.ID);
      if (ttl > MAX_LEASE_TTL) throw errors.leaseTTLTooLarge();
      if (id === 0n) {
        do id = randomId();
        while (this.leaseMap.has(id));
      } else if (this.leaseMap.has(id)) {
        throw errors.leaseExists();
      }
      if (ttl < this.minLeaseTtl) ttl = this.minLeaseTtl;
      this.ensureBatch().leases.add(id);
      this.db.insertLease(id, ttl);
      this.leaseMap.set(id, { id, ttl, expiresAt: Date.now() + Number(ttl) * 1000, keys: new Set() });
      return { header: this.header(), ID: toWire(id), TTL: toWire(ttl), error: "" };
    });
  }

  private revokeNow(id: bigint): void {
    const lease = this.leaseMap.get(id);
    if (!lease) throw errors.leaseNotFound();
    const w = new Writer(this.revision);
    this.deleteKeys(w, [...lease.keys].sort());
    this.ensureBatch().leases.add(id);
    this.db.deleteLease(id);
    this.leaseMap.delete(id);
    this.finish(w);
  }

  /** Lease.LeaseRevoke: deletes the lease and, in one revision, its keys. */
  revoke(id: bigint): Promise<LeaseRevokeResponse> {
    return this.run(() => {
      this.revokeNow(id);
      return { header: this.header() };
    });
  }

  /**
   * One keep-alive: the lease's TTL, or 0 if it does not exist or has expired. Nothing is written, so
   * it answers at once unless the lease was granted or revoked by a write still waiting for its commit.
   */
  renew(id: bigint): Promise<bigint> {
    const renewNow = () => {
      const lease = this.leaseMap.get(id);
      const now = Date.now();
      if (!lease || lease.expiresAt <= now) return 0n;
      lease.expiresAt = now + Number(lease.ttl) * 1000;
      return lease.ttl;
    };
    if (this.closed || this.batch?.leases.has(id)) return this.run(renewNow);
    return Promise.resolve(renewNow());
  }

  /** Lease.LeaseTimeToLive: remaining seconds (truncated, as etcd), or TTL -1 if there is no such lease. */
  timeToLive(id: bigint, keys: boolean): Promise<LeaseTimeToLiveResponse> {
    return this.run(() => {
      const lease = this.leaseMap.get(id);
      if (!lease) return { header: this.header(), ID: toWire(id), TTL: "-1", grantedTTL: "0", keys: [] };
      const remaining = Math.trunc((lease.expiresAt - Date.now()) / 1000);
      return {
        header: this.header(),
        ID: toWire(id),
        TTL: toWire(BigInt(remaining)),
        grantedTTL: toWire(lease.ttl),
        keys: keys ? [...lease.keys].sort().map(keyBytes) : [],
      };
    });
  }

  /** Lease.LeaseLeases: every lease, by ID. */
  leases(): Promise<LeaseLeasesResponse> {
    return this.run(() => ({
      header: this.header(),
      leases: [...this.leaseMap.keys()].sort((a, b) => (a < b ? -1 : 1)).map((id) => ({ ID: toWire(id) })),
    }));
  }

  /** Revokes every lease whose time has passed; resolves when those revocations are committed. */
  async expireLeases(now = Date.now()): Promise<void> {
    const due = [...this.leaseMap.values()].filter((l) => l.expiresAt <= now).map((l) => l.id);
    await Promise.all(
      due.map((id) =>
        this.run(() => {
          const lease = this.leaseMap.get(id);
          // Kept alive or revoked since it was found due: leave it.
          if (lease && lease.expiresAt <= now) this.revokeNow(id);
        }),
      ),
    );
  }

  /** Commits what is pending and closes the database. Later requests fail with "server stopped". */
  close(): void {
    if (!this.closed && this.batch) this.commit(this.batch);
    this.closed = true;
    this.db.close();
  }
}

function compareTarget(c: Compare, kv: Kv, load: ValueLoader): number {
  const num = (field: "version" | "create_revision" | "mod_revision" | "lease") =>
    c.target_union === field ? fromWire(c[field]) : 0n;
  const big = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
  switch (c.target) {
    case CompareTarget.VERSION:
      return big(kv.version, num("version"));
    case CompareTarget.CREATE:
      return big(kv.createRev, num("create_revision"));
    case CompareTarget.MOD:
      return big(kv.modRev, num("mod_revision"));
    case CompareTarget.LEASE:
      return big(kv.lease, num("lease"));
    default: {
      const want = c.target_union === "value" ? (c.value ?? EMPTY).toString("latin1") : "";
      const have = kvValue(kv, load);
      return have < want ? -1 : have > want ? 1 : 0;
    }
  }
}
