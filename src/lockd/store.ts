/**
 * The state of a lockd node: MVCC keys with one global revision, leases, and the write batching that
 * makes every reply wait for its commit. SQLite is the source of truth; the in-memory index (live keys in
 * a Map plus a sorted key list, leases with their keys) is rebuilt from it on start and after a failed
 * commit.
 *
 * Writes of one event-loop turn share one SQLite transaction: the first write opens it, a `setImmediate`
 * commits it, and only once it is durable are the replies of that turn (reads included, since they may
 * have seen the uncommitted writes) sent and the watchers told. With `--sync full` a commit is durable once
 * a WAL sync after it has succeeded; the sync runs off the event loop, and the batches committed while one
 * runs share the next (group commit).
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
import { type CopyPoint, copyDatabase } from "./backup.js";
import { type HistoryRow, LockdDb, type SyncMode } from "./db.js";
import { EtcdError, errors } from "./errors.js";
import type { GrpcFrame } from "./grpc-frame.js";
import { inRange, type KeyRange, type KeyString, keyBytes, keyOf, keyRange } from "./keys.js";
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
import { encodeKvAnswer } from "./kv-answers.js";
import { LeaseIdGenerator } from "./lease-ids.js";
import {
  encodeInSteps,
  encodeRangeInSteps,
  nextTurn,
  plainOrder,
  rangeResult,
  STEP_KEYS,
  type StepLoader,
} from "./range-result.js";
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
   * Called if the database cannot even be read back after a failed commit, or a WAL sync fails; the store
   * then refuses every request ("server stopped") instead of serving an index it cannot trust.
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

/**
 * The keys of a range read that works in steps, as they were when it began: a write that changes or
 * deletes one of them first saves its record here, so the read still sees the state of its revision.
 */
interface Snapshot {
  range: KeyRange;
  saved: Map<KeyString, Kv>;
}

interface Batch {
  pending: Pending[];
  revisions: RevisionChanges[];
  idle: (() => void)[];
  /** Leases granted or revoked in this batch: their keep-alives wait for the commit. */
  leases: Set<bigint>;
  /** Whether this batch compacts: then reads wait for the commit too. */
  compacts: boolean;
  /** The revision of its last write, once committed. */
  rev: bigint;
  /** Its place in commit order (1, 2, …), once committed. */
  seq: number;
}

/** The records of a key range at some revision, in key order. */
type View = (range: KeyRange) => Kv[];

/** Thrown by a view over more keys than a read answered at once may look at. */
const TOO_WIDE = new Error("lockd: range too wide to be read at once");

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

/** WAL syncs running at once at most (`--sync full`). */
const MAX_SYNCS = 2;

/** Large reads answered at once; more wait their turn. */
const MAX_LARGE_READS = 2;

/** The encoder of a KV method's answer, as the server sends small ones: the tail of a stepped answer. */
function encoder(method: "Range" | "DeleteRange"): (res: object) => Buffer {
  return (res) => encodeKvAnswer(method, res);
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
  /**
   * Whether clients wait on this node (watchers): their requests come while a sync runs, so syncs then
   * run off the event loop even when requests seem to come one at a time.
   */
  watched: () => boolean = () => false;

  private readonly db: LockdDb;
  private readonly maxRequestBytes: number;
  private readonly quotaBytes: number;
  private readonly minLeaseTtl: bigint;
  private readonly maxTxnOps: number;
  private readonly onBroken: (err: unknown) => void;
  /** The node's IDs and term in their wire form, converted once: every response carries them. */
  private readonly wireIds: { clusterId: string; memberId: string; term: string };
  private readonly live = new Map<KeyString, Kv>();
  private readonly sorted = new SortedKeys();
  private readonly leaseMap = new Map<bigint, LeaseState>();
  private liveBytes = 0;
  private revision = 1n;
  /** The newest revision whose commit has returned: every acknowledged write is at or below it. */
  private committed = 1n;
  private compacted = -1n;
  private batch: Batch | undefined;
  /** Batches committed to SQLite, oldest first, waiting for a WAL sync (`--sync full`). */
  private readonly unsynced: Batch[] = [];
  /** WAL syncs running, and the sequence number of the last batch the newest of them covers. */
  private syncsRunning = 0;
  private syncedUpTo = 0;
  /** Sequence number of the last batch committed to SQLite. */
  private commits = 0;
  /** Requests came together lately: more than one in the last batch, or one while writes were pending. */
  private concurrent = false;
  /**
   * For each key changed by writes not yet durable, its record at the committed revision (`null`:
   * absent), so that a read-only Txn can be answered at once from that revision, as a Range is (see
   * `txnAtCommitted`). Trusted only while `undoExact`: it is emptied when every write is durable, and
   * cannot tell what is durable while only some are.
   */
  private readonly undo = new Map<KeyString, Kv | null>();
  private undoExact = true;
  private closed = false;
  private leaseIds: LeaseIdGenerator | undefined;
  /** Requests working in steps (see `stepped`), and what waits for there to be none. */
  private steppedRunning = 0;
  private steppedDone: (() => void)[] = [];
  /** A write is applying in steps (see `runSteps`); requests that use the index wait in `gated`. */
  private applying = false;
  private readonly gated: (() => void)[] = [];
  private readonly snapshots = new Set<Snapshot>();
  /** Large reads being answered, and those waiting for one of the `MAX_LARGE_READS` places. */
  private largeReads = 0;
  private readonly largeReadQueue: (() => void)[] = [];

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
    if (this.db.syncsEachCommit) this.db.syncNow();
    this.wireIds = {
      clusterId: toWire(this.clusterId),
      memberId: toWire(this.memberId),
      term: toWire(this.term),
    };
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

  /** Number of leases. */
  get leaseCount(): number {
    return this.leaseMap.size;
  }

  /** Receives the duration of each commit and WAL sync, in seconds. */
  set timings(timings: { commit(seconds: number): void; fsync(seconds: number): void }) {
    this.db.timings = timings;
  }

  /** Database size in bytes, total and in use. */
  dbSize(): { total: bigint; inUse: bigint } {
    return this.db.size();
  }

  /** Reads a value that is not kept in memory from the key's row in history (always kept while live). */
  readonly loadValue: ValueLoader = (kv) =>
    this.db.valueAt(keyBytes(kv.key), kv.modRev)?.toString("latin1") ?? "";

  /**
   * Values of a step of a large answer: when its records are in key order, one query reads every value
   * of their key span kept only in SQLite, matched to them in one walk (both in key order); else (or for
   * a few) one query per value.
   */
  private readonly stepLoader: StepLoader = {
    one: this.loadValue,
    step: (step) => {
      const one = (kv: Kv) =>
        kv.value !== null
          ? Buffer.from(kv.value, "latin1")
          : (this.db.valueAt(keyBytes(kv.key), kv.modRev) ?? EMPTY);
      const missing = step.filter((kv) => kv.value === null);
      if (missing.length < 16) return one;
      for (let i = 1; i < step.length; i++) if ((step[i - 1] as Kv).key > (step[i] as Kv).key) return one;
      const first = keyBytes((missing[0] as Kv).key);
      const last = keyBytes((missing[missing.length - 1] as Kv).key);
      const values = new Map<Kv, Buffer>();
      let j = 0;
      for (const [key, rev, value] of this.db.valuesBetween(first, last, INLINE_VALUE_BYTES)) {
        const k = keyOf(key);
        while (j < missing.length && (missing[j] as Kv).key < k) j++;
        const kv = missing[j];
        if (kv?.key === k && kv.modRev === rev) values.set(kv, value);
      }
      return (kv) => values.get(kv) ?? one(kv);
    },
  };

  /** A top-level response header at `rev`. */
  header(rev: bigint = this.revision): ResponseHeader {
    const { clusterId, memberId, term } = this.wireIds;
    return { cluster_id: clusterId, member_id: memberId, revision: toWire(rev), raft_term: term };
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
    if (this.applying) {
      return new Promise<T>((resolve, reject) =>
        this.gated.push(() => void this.run(compute).then(resolve, reject)),
      );
    }
    return new Promise<T>((resolve, reject) => {
      if (this.closed) {
        reject(errors.stopped());
        return;
      }
      if (this.lastBatch()) this.concurrent = true;
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
      const last = this.lastBatch();
      if (last) last.pending.push({ resolve: () => resolve(result), reject });
      else resolve(result);
    });
  }

  /** The newest batch not yet durable: the open one, else the last one waiting for its sync. */
  private lastBatch(): Batch | undefined {
    return this.batch ?? this.unsynced[this.unsynced.length - 1];
  }

  /**
   * Runs a write that may take several event-loop turns (a delete of many keys): `apply` changes the
   * index and SQLite a step per turn. Until it ends, every request that uses the index waits (in order),
   * and the batch does not commit, so the write is seen whole or not at all; keep-alives and reads of the
   * committed revision go on. Resolves once committed. An `EtcdError` from `apply` (thrown before any
   * change) rejects only this request; any other error fails the batch.
   */
  private runSteps<T>(apply: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        if (this.closed) {
          reject(errors.stopped());
          return;
        }
        this.applying = true;
        apply()
          .then(
            (result) => {
              const last = this.lastBatch();
              if (last) last.pending.push({ resolve: () => resolve(result), reject });
              else resolve(result);
            },
            (err: unknown) => {
              if (err instanceof EtcdError) {
                reject(err);
                return;
              }
              if (this.batch) this.failBatch(err);
              reject(this.closed ? errors.stopped() : errors.storageFailed(err));
            },
          )
          .finally(() => {
            this.applying = false;
            while (!this.applying && this.gated.length > 0) (this.gated.shift() as () => void)();
          });
      };
      if (this.applying) this.gated.push(start);
      else start();
    });
  }

  /**
   * Records `key`'s committed record before its first pending change. Past `STEP_KEYS` keys it gives up
   * until every write is durable: reads of so many changes take the usual way, and memory stays small.
   */
  private noteUndo(key: KeyString, before: Kv | null): void {
    if (!this.undoExact || this.undo.has(key)) return;
    if (this.undo.size >= STEP_KEYS) {
      this.undoExact = false;
      this.undo.clear();
      return;
    }
    this.undo.set(key, before);
  }

  /** Saves the record a write is about to change for the stepped reads that began before it. */
  private remember(key: KeyString, prev: Kv): void {
    for (const snap of this.snapshots)
      if (!snap.saved.has(key) && inRange(snap.range, key)) snap.saved.set(key, prev);
  }

  /** Runs `fn` once no write is waiting for its commit (now, if none is). */
  whenIdle(fn: () => void): void {
    const last = this.lastBatch();
    if (last) last.idle.push(fn);
    else fn();
  }

  private ensureBatch(): Batch {
    if (this.batch) return this.batch;
    if (this.syncsRunning > 0) this.concurrent = true;
    this.db.begin();
    const batch: Batch = {
      pending: [],
      revisions: [],
      idle: [],
      leases: new Set(),
      compacts: false,
      rev: 0n,
      seq: 0,
    };
    this.batch = batch;
    setImmediate(() => this.commit(batch));
    return batch;
  }

  private commit(batch: Batch): void {
    if (this.batch !== batch) return;
    if (this.applying) {
      // A write is applying in steps: the batch commits once it is whole.
      setImmediate(() => this.commit(batch));
      return;
    }
    try {
      this.db.commit();
    } catch (err) {
      this.failBatch(err);
      return;
    }
    this.batch = undefined;
    batch.rev = this.revision;
    if (!this.db.syncsEachCommit) {
      this.durable(batch);
      return;
    }
    // Requests one at a time: the sync runs here, since handing it to a thread costs two wake-ups and
    // overlaps nothing. Once they come together, it runs off the event loop, which serves them meanwhile.
    batch.seq = ++this.commits;
    const inline =
      !this.concurrent && this.syncsRunning === 0 && this.unsynced.length === 0 && !this.watched();
    this.concurrent = batch.pending.length > 1;
    this.unsynced.push(batch);
    if (inline) this.syncInline();
    else this.startSync();
  }

  private syncInline(): void {
    try {
      this.db.syncNow();
    } catch (err) {
      this.syncFailed(err);
      return;
    }
    for (const batch of this.unsynced.splice(0)) this.durable(batch);
  }

  /**
   * Syncs the WAL for every batch committed so far, without waiting for a sync already running (a write
   * committed meanwhile would otherwise wait for two): at most `MAX_SYNCS` at once, the next one covers
   * the rest. A sync makes durable, in order, every batch committed before it began.
   */
  private startSync(): void {
    const last = this.unsynced[this.unsynced.length - 1];
    if (this.closed || !last || last.seq <= this.syncedUpTo || this.syncsRunning >= MAX_SYNCS) return;
    const upTo = last.seq;
    this.syncedUpTo = upTo;
    this.syncsRunning++;
    try {
      this.db.sync((err) => {
        this.syncsRunning--;
        // `close` has synced and answered them already.
        if (this.closed) return;
        if (err) {
          this.syncFailed(err);
          return;
        }
        while (this.unsynced.length > 0 && (this.unsynced[0] as Batch).seq <= upTo)
          this.durable(this.unsynced.shift() as Batch);
        this.startSync();
      });
    } catch (err) {
      this.syncsRunning--;
      this.syncFailed(err);
    }
  }

  /** A batch is on disk: its watchers are told and its replies sent. */
  private durable(batch: Batch): void {
    this.committed = batch.rev;
    if (this.lastBatch() === undefined) {
      this.undo.clear();
      this.undoExact = true;
    } else {
      this.undoExact = false;
      this.undo.clear();
    }
    this.onCommit(batch.revisions);
    for (const p of batch.pending) p.resolve();
    for (const fn of batch.idle) fn();
  }

  /**
   * A WAL sync failed: the kernel may have dropped pages it could not write, so nothing committed since
   * the last good sync can be trusted. The node stops (`onBroken`); the requests waiting fail.
   */
  private syncFailed(cause: unknown): void {
    if (this.batch) this.failBatch(cause);
    this.closed = true;
    this.onBroken(cause);
    for (const batch of this.unsynced.splice(0)) {
      for (const p of batch.pending) p.reject(errors.storageFailed(cause));
      for (const fn of batch.idle) fn();
    }
  }

  /** Resolves once the writes this node holds now are committed; rejects if their commit fails. */
  private afterCommit(): Promise<void> {
    const batch = this.lastBatch();
    if (!batch) return Promise.resolve();
    return new Promise((resolve, reject) => batch.pending.push({ resolve, reject }));
  }

  /**
   * Runs a request that works in steps across event-loop turns. Compaction waits until none runs, so the
   * history rows such a request still reads stay.
   */
  private async stepped<T>(work: () => Promise<T>): Promise<T> {
    this.steppedRunning++;
    try {
      return await work();
    } catch (err) {
      if (err instanceof EtcdError) throw err;
      throw this.closed ? errors.stopped() : errors.storageFailed(err);
    } finally {
      this.steppedRunning--;
      if (this.steppedRunning === 0) for (const fn of this.steppedDone.splice(0)) fn();
    }
  }

  private failBatch(cause: unknown): void {
    const batch = this.batch;
    this.batch = undefined;
    // Batches waiting for their sync are in the database, read back too, but not yet durable.
    const committed = this.committed;
    try {
      this.db.rollback();
      this.load();
      this.committed = committed;
      this.undo.clear();
      this.undoExact = this.unsynced.length === 0;
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

  /**
   * The keys of `range` at revision `rev` (at most `memoryRev`): from memory if it holds `rev` (the index
   * is at `memoryRev`), else from history. A single live key unchanged since `rev` is read from memory too:
   * the waiter of a lock reads its predecessor at a past revision on every hand-over.
   */
  private keysAt(range: KeyRange, rev: bigint, memoryRev: bigint): Kv[] {
    if (rev === memoryRev) {
      const [lo, hi] = this.sorted.bounds(range);
      return this.sorted.slice(lo, hi).map((key) => this.live.get(key) as Kv);
    }
    if ("single" in range) {
      const kv = this.live.get(range.single);
      if (kv && kv.modRev <= rev) return [kv];
    }
    return this.db.rangeAt(range, rev).map((row) => kvOfRow(row));
  }

  private checkRev(asked: bigint, currentRev: bigint): bigint {
    if (asked > currentRev) throw errors.futureRev();
    const rev = asked > 0n ? asked : currentRev;
    if (rev < this.compacted) throw errors.compacted();
    return rev;
  }

  /**
   * A Range inside a Txn, answered at once: a count needs no keys, only their positions. `view` reads
   * the records at `currentRev`: the index (the revision before this Txn, or its own once it has
   * written), or the committed revision (`atCommitted`).
   */
  private rangeAt(req: RangeRequest, currentRev: bigint, view: View): RangeResponse {
    const rev = this.checkRev(fromWire(req.revision), currentRev);
    const range = keyRange(req.key, req.range_end);
    const header = innerHeader(currentRev);
    if (rev === currentRev && req.count_only && view === this.inIndex) {
      const [lo, hi] = this.sorted.bounds(range);
      return { header, ...rangeResult(req, [], this.loadValue, hi - lo) };
    }
    // The index is at `currentRev` for `inIndex`; under `atCommitted` it is at the store's revision.
    const memoryRev = view === this.inIndex ? currentRev : this.revision;
    const kvs = rev === currentRev ? view(range) : this.keysAt(range, rev, memoryRev);
    return { header, ...rangeResult(req, kvs, this.loadValue) };
  }

  /** The records of a range as the index holds them, in key order. */
  private readonly inIndex: View = (range) => {
    const [lo, hi] = this.sorted.bounds(range);
    return this.sorted.slice(lo, hi).map((key) => this.live.get(key) as Kv);
  };

  /**
   * The records of a range at the committed revision, in key order: the index with the changes not yet
   * durable undone. Throws `TOO_WIDE` past `STEP_KEYS` keys (the request then takes the usual way).
   */
  private readonly atCommitted: View = (range) => {
    const [lo, hi] = this.sorted.bounds(range);
    if (hi - lo > STEP_KEYS) throw TOO_WIDE;
    const out: Kv[] = [];
    for (const key of this.sorted.slice(lo, hi)) {
      const before = this.undo.get(key);
      if (before === undefined) out.push(this.live.get(key) as Kv);
      else if (before !== null) out.push(before);
    }
    let deleted = false;
    for (const [key, before] of this.undo) {
      if (before !== null && !this.live.has(key) && inRange(range, key)) {
        out.push(before);
        deleted = true;
      }
    }
    if (deleted) out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  };

  /**
   * KV.Range. While writes wait for their commit, a read that does not ask for a newer revision is
   * answered from the committed revision (SQLite holds it: every uncommitted row is above it), so reads
   * never wait for a disk sync. That is still linearizable: every acknowledged write is at or below the
   * committed revision. A read over more than `STEP_KEYS` keys takes the keys it answers with in one
   * go (pointers from memory, or pages from SQLite between turns) and is encoded in steps: the answer is
   * then the response's protobuf bytes, framed for gRPC.
   */
  range(req: RangeRequest): Promise<RangeResponse | GrpcFrame> {
    if (this.closed) return Promise.reject(errors.stopped());
    try {
      checkRange(req);
      const batch = this.lastBatch();
      const asked = fromWire(req.revision);
      const compacting = this.batch?.compacts || this.unsynced.some((b) => b.compacts);
      const fromCommitted = batch !== undefined && !compacting && asked <= this.committed;
      if (batch) this.concurrent = true;
      // The index is half-changed while a write applies in steps: a read of it waits its turn.
      if (this.applying && !fromCommitted) return this.run(() => undefined).then(() => this.range(req));
      const current = fromCommitted ? this.committed : this.revision;
      const rev = this.checkRev(asked, current);
      // Reads of uncommitted writes (only while a compaction is pending) reply after their commit.
      const durable = fromCommitted ? Promise.resolve() : this.afterCommit();
      durable.catch(() => {});
      const range = keyRange(req.key, req.range_end);
      const header = this.header(current);
      if (rev !== this.revision) {
        if ("single" in range) {
          const res = { header, ...rangeResult(req, this.keysAt(range, rev, this.revision), this.loadValue) };
          return durable.then(() => res);
        }
        if (this.largeReads >= MAX_LARGE_READS) return this.afterLargeRead().then(() => this.range(req));
        return this.largeRead(async () => {
          const all = await this.readPages(range, rev);
          const bytes = await encodeRangeInSteps(req, all, this.stepLoader, encoder("Range"), header);
          await durable;
          return bytes;
        });
      }
      const [lo, hi] = this.sorted.bounds(range);
      const limit = fromWire(req.limit);
      let res: RangeResponse | undefined;
      if (req.count_only) res = { header, ...rangeResult(req, [], this.loadValue, hi - lo) };
      else if (hi - lo <= STEP_KEYS)
        res = { header, ...rangeResult(req, this.keysAt(range, rev, rev), this.loadValue) };
      else if (limit > 0n && limit <= BigInt(STEP_KEYS) && plainOrder(req)) {
        // The first keys in key order are the whole answer: only they are looked at.
        const first = this.sorted.slice(lo, lo + Number(limit)).map((key) => this.live.get(key) as Kv);
        res = { header, ...rangeResult(req, first, this.loadValue, hi - lo) };
      }
      if (res) {
        const answer = res;
        return durable.then(() => answer);
      }
      // The keys as they are now; their records are looked up in steps, through a snapshot that keeps
      // what later writes replace (records are never changed in place, only replaced).
      if (this.largeReads >= MAX_LARGE_READS) return this.afterLargeRead().then(() => this.range(req));
      const keys = this.sorted.slice(lo, hi);
      const snap: Snapshot = { range, saved: new Map() };
      this.snapshots.add(snap);
      return this.largeRead(async () => {
        const all: Kv[] = [];
        try {
          for (let i = 0; i < keys.length; i += STEP_KEYS) {
            if (i > 0) await nextTurn();
            for (const key of keys.slice(i, i + STEP_KEYS))
              all.push(snap.saved.get(key) ?? (this.live.get(key) as Kv));
          }
        } finally {
          this.snapshots.delete(snap);
        }
        const bytes = await encodeRangeInSteps(req, all, this.stepLoader, encoder("Range"), header);
        await durable;
        return bytes;
      });
    } catch (err) {
      return Promise.reject(err instanceof EtcdError ? err : errors.storageFailed(err));
    }
  }

  /**
   * Runs a large read in steps (see `stepped`), holding one of the `MAX_LARGE_READS` places: each holds
   * its answer's buffers until sent, so more at once would only raise the peak memory, not the speed.
   */
  private async largeRead<T>(work: () => Promise<T>): Promise<T> {
    this.largeReads++;
    try {
      return await this.stepped(work);
    } finally {
      this.largeReads--;
      this.largeReadQueue.shift()?.();
    }
  }

  /** Resolves when a large read ends; the waiting read then starts over, from the state at that time. */
  private afterLargeRead(): Promise<void> {
    return new Promise((resolve) => this.largeReadQueue.push(resolve));
  }

  /** The live keys of `range` at `rev` from history, a page per turn. */
  private async readPages(range: Exclude<KeyRange, { single: KeyString }>, rev: bigint): Promise<Kv[]> {
    const all: Kv[] = [];
    if (range.end !== null && range.end <= range.start) return all;
    const start = keyBytes(range.start);
    const end = range.end === null ? null : keyBytes(range.end);
    let after: Buffer = EMPTY;
    for (;;) {
      const rows = this.db.rangePage(start, end, rev, after, STEP_KEYS);
      for (const row of rows) if (row.version > 0n) all.push(kvOfRow(row, false));
      if (rows.length < STEP_KEYS) return all;
      after = (rows[rows.length - 1] as HistoryRow).key;
      await nextTurn();
      if (rev < this.compacted) throw errors.compacted();
    }
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
    if (prev) this.remember(key, prev);
    this.noteUndo(key, prev ?? null);
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

  /** Deletes `keys` (all live) at the writer's revision, from the index and into SQLite; not from `sorted`. */
  private deleteStep(w: Writer, keys: KeyString[], deleted: Kv[]): void {
    if (keys.length > 0) this.ensureBatch();
    for (const key of keys) {
      const prev = this.live.get(key) as Kv;
      this.remember(key, prev);
      this.noteUndo(key, prev);
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
      this.liveBytes -= key.length + prev.size;
      w.events.push({ type: DELETE, kv: tombstone(key, w.rev), prev });
      deleted.push(prev);
    }
  }

  /** Removes deleted keys from `sorted`: one run `[lo, hi)` of it, or keys spread over it. */
  private unindex(keys: KeyString[], run: [number, number] | undefined): void {
    if (run) this.sorted.deleteBetween(run[0], run[1]);
    else if (keys.length > 64) this.sorted.deleteAll(new Set(keys));
    else for (const key of keys) this.sorted.delete(key);
  }

  /** Deletes `keys` (sorted, all live) at once; `run` gives their positions in `sorted` if they are one run. */
  private deleteKeys(w: Writer, keys: KeyString[], run?: [number, number]): Kv[] {
    const deleted: Kv[] = [];
    this.deleteStep(w, keys, deleted);
    this.unindex(keys, run);
    return deleted;
  }

  /** `deleteKeys` a step per turn; only inside `runSteps`, which keeps every other user of the index out. */
  private async deleteKeysInSteps(w: Writer, keys: KeyString[], run?: [number, number]): Promise<Kv[]> {
    const deleted: Kv[] = [];
    for (let i = 0; i < keys.length; i += STEP_KEYS) {
      if (i > 0) await nextTurn();
      if (this.closed) throw errors.stopped();
      this.deleteStep(w, keys.slice(i, i + STEP_KEYS), deleted);
    }
    this.unindex(keys, run);
    return deleted;
  }

  /** Deletes a range inside a Txn, at once. */
  private deleteIn(w: Writer, req: DeleteRangeRequest): DeleteRangeResponse {
    const [lo, hi] = this.sorted.bounds(keyRange(req.key, req.range_end));
    const deleted = this.deleteKeys(w, this.sorted.slice(lo, hi), [lo, hi]);
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

  /**
   * KV.DeleteRange: every key of the range at one revision, deleted a step per turn (see `runSteps`).
   * With `prev_kv` over more than `STEP_KEYS` keys, the answer is encoded in steps once committed.
   */
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse | GrpcFrame> {
    let finished = () => {};
    const applied = this.runSteps(async () => {
      checkDelete(req);
      this.checkSize(req, false);
      const w = new Writer(this.revision);
      const [lo, hi] = this.sorted.bounds(keyRange(req.key, req.range_end));
      const deleted = await this.deleteKeysInSteps(w, this.sorted.slice(lo, hi), [lo, hi]);
      this.finish(w);
      // Until the answer is encoded its previous values are read from history: no compaction meanwhile.
      if (req.prev_kv && deleted.length > STEP_KEYS)
        void this.stepped(() => new Promise<void>((resolve) => (finished = resolve)));
      return { header: this.header(w.readRev), deleted: toWire(BigInt(deleted.length)), kvs: deleted };
    });
    return applied.then(
      async ({ header, deleted, kvs }) => {
        const res: DeleteRangeResponse = { header, deleted, prev_kvs: [] };
        if (!req.prev_kv) return res;
        if (kvs.length <= STEP_KEYS)
          return { ...res, prev_kvs: kvs.map((kv) => kvToWire(kv, this.loadValue)) };
        try {
          const encode = encoder("DeleteRange");
          return await encodeInSteps(kvs, false, this.stepLoader, "prev_kvs", encode(res));
        } finally {
          finished();
        }
      },
      (err: unknown) => {
        finished();
        throw err;
      },
    );
  }

  private compareOk(c: Compare, view: View): boolean {
    const kvs = view(keyRange(c.key, c.range_end));
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

  private choosePath(req: TxnRequest, view: View): Path {
    const ok = (req.compare ?? []).every((c) => this.compareOk(c, view));
    const nested: Path[] = [];
    for (const op of (ok ? req.success : req.failure) ?? [])
      if (op.request === "request_txn") nested.push(this.choosePath(op.request_txn as TxnRequest, view));
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

  private checkRanges(req: TxnRequest, path: Path, current: bigint): void {
    let n = 0;
    for (const op of (path.ok ? req.success : req.failure) ?? []) {
      if (op.request === "request_txn")
        this.checkRanges(op.request_txn as TxnRequest, path.nested[n++] as Path, current);
      if (op.request !== "request_range") continue;
      const rev = fromWire((op.request_range as RangeRequest).revision);
      if (rev > current) throw errors.futureRev();
      if (rev > 0n && rev < this.compacted) throw errors.compacted();
    }
  }

  private applyOps(w: Writer, ops: RequestOp[], path: Path, view: View): ResponseOp[] {
    let n = 0;
    return ops.map((op): ResponseOp => {
      switch (op.request) {
        case "request_range":
          return { response_range: this.rangeAt(op.request_range as RangeRequest, w.readRev, view) };
        case "request_put":
          return { response_put: this.putIn(w, op.request_put as PutRequest) };
        case "request_delete_range":
          return {
            response_delete_range: this.deleteIn(w, op.request_delete_range as DeleteRangeRequest),
          };
        default: {
          const nested = op.request_txn as TxnRequest;
          const p = path.nested[n++] as Path;
          const responses = this.applyOps(w, (p.ok ? nested.success : nested.failure) ?? [], p, view);
          return { response_txn: { header: innerHeader(0n), succeeded: p.ok, responses } };
        }
      }
    });
  }

  /** KV.Txn: compares, then the chosen branch, all in one revision. */
  txn(req: TxnRequest): Promise<TxnResponse> {
    try {
      const answer = this.txnAtCommitted(req);
      if (answer) return Promise.resolve(answer);
    } catch (err) {
      return Promise.reject(err instanceof EtcdError ? err : errors.storageFailed(err));
    }
    return this.run(() => {
      checkTxn(req, this.maxTxnOps);
      const writes = txnWrites(req);
      this.checkSize(req, writes);
      const path = this.choosePath(req, this.inIndex);
      if (writes) this.checkPuts(req, path);
      this.checkRanges(req, path, this.revision);
      const w = new Writer(this.revision);
      const responses = this.applyOps(w, (path.ok ? req.success : req.failure) ?? [], path, this.inIndex);
      this.finish(w);
      return { header: this.header(w.readRev), succeeded: path.ok, responses };
    });
  }

  /**
   * A Txn that only reads, while writes wait for their commit: answered at once from the committed
   * revision, as a Range is (every acknowledged write is at or below it, so this is still
   * linearizable), instead of waiting for a sync that has nothing to do with it. A lock waiter's
   * predecessor read would otherwise wait for the sync of the next contender's key. Undefined when it
   * takes the usual way: nothing pending, a write or compaction on the way, a range over more than
   * `STEP_KEYS` keys, or a revision above the committed one.
   */
  private txnAtCommitted(req: TxnRequest): TxnResponse | undefined {
    if (this.closed || this.applying || !this.undoExact) return undefined;
    if (this.lastBatch() === undefined || this.batch?.compacts || this.unsynced.some((b) => b.compacts))
      return undefined;
    this.concurrent = true;
    checkTxn(req, this.maxTxnOps);
    if (txnWrites(req)) return undefined;
    this.checkSize(req, false);
    const rev = this.committed;
    try {
      const path = this.choosePath(req, this.atCommitted);
      this.checkRanges(req, path, this.revision);
      // A range asking for a revision above the committed one waits for it the usual way.
      this.checkRanges(req, path, rev);
      const ops = (path.ok ? req.success : req.failure) ?? [];
      const responses = this.applyOps(new Writer(rev), ops, path, this.atCommitted);
      return { header: this.header(rev), succeeded: path.ok, responses };
    } catch (err) {
      if (err === TOO_WIDE || (err instanceof EtcdError && err.code === "FUTURE_REV")) return undefined;
      throw err;
    }
  }

  /** KV.Compact: forgets history below `revision`. */
  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    // Requests working in steps may still read the history it would remove.
    while (this.steppedRunning > 0) await new Promise<void>((resolve) => this.steppedDone.push(resolve));
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
    // Requests working in steps may still read the history it would remove: the next round compacts.
    if (this.steppedRunning > 0) return Promise.resolve();
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
        // The batch first: the generator records the ID in its transaction, committed before the reply.
        this.ensureBatch();
        this.leaseIds ??= new LeaseIdGenerator(this.db, this.memberId);
        do id = this.leaseIds.next();
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

  /** Deletes lease `id` and, in one revision, its keys (a step per turn: only inside `runSteps`). */
  private async revokeInSteps(id: bigint): Promise<void> {
    const lease = this.leaseMap.get(id);
    if (!lease) throw errors.leaseNotFound();
    const w = new Writer(this.revision);
    await this.deleteKeysInSteps(w, [...lease.keys].sort());
    this.ensureBatch().leases.add(id);
    this.db.deleteLease(id);
    this.leaseMap.delete(id);
    this.finish(w);
  }

  /** Lease.LeaseRevoke: deletes the lease and, in one revision, its keys. */
  revoke(id: bigint): Promise<LeaseRevokeResponse> {
    return this.runSteps(async () => {
      await this.revokeInSteps(id);
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
    const pending = this.batch?.leases.has(id) || this.unsynced.some((b) => b.leases.has(id));
    if (this.closed || pending) return this.run(renewNow);
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
        this.runSteps(async () => {
          const lease = this.leaseMap.get(id);
          // Kept alive or revoked since it was found due: leave it.
          if (lease && lease.expiresAt <= now) await this.revokeInSteps(id);
        }),
      ),
    );
  }

  /**
   * Writes a consistent copy of the database at the committed revision to `path` (see `copyDatabase`)
   * and resolves with that revision. Waits for pending writes to commit, then copies a step per turn;
   * compaction waits meanwhile. Rejects if the node closes first; a second call makes a second copy.
   */
  backup(path: string): Promise<bigint> {
    return this.stepped(async () => {
      // Taken when no write is pending, so the database holds exactly the committed revision.
      const point = await new Promise<CopyPoint | undefined>((resolve) =>
        this.whenIdle(() => resolve(this.closed ? undefined : this.copyPoint())),
      );
      if (!point) throw errors.stopped();
      await copyDatabase(this.db, point, path, () => !this.closed);
      return point.revision;
    });
  }

  private copyPoint(): CopyPoint {
    const meta: CopyPoint["meta"] = {};
    for (const name of ["cluster_id", "member_id", "term", "compact_revision"] as const) {
      const value = this.db.meta(name);
      if (value !== undefined) meta[name] = value;
    }
    return { revision: this.committed, leases: this.db.leases(), meta };
  }

  /** Commits what is pending and closes the database. Later requests fail with "server stopped". */
  close(): void {
    // A write still applying in steps is not whole: its batch is abandoned (nothing in it was answered).
    if (!this.closed && this.batch && this.applying) this.failBatch(errors.stopped());
    else if (!this.closed && this.batch) this.commit(this.batch);
    if (!this.closed && this.unsynced.length > 0) {
      // The last commits are synced here, before the database closes, and answered.
      const batches = this.unsynced.splice(0);
      let failure: unknown;
      try {
        this.db.syncNow();
      } catch (err) {
        failure = err;
      }
      for (const batch of batches) {
        if (failure === undefined) this.durable(batch);
        else for (const p of batch.pending) p.reject(errors.storageFailed(failure));
      }
    }
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
