/**
 * A fair distributed mutex with fencing tokens: etcd's `concurrency.Mutex` algorithm with its holes
 * closed. Each contender puts `<name>/<leaseId hex>` under its session's lease; the holder is the key with
 * the lowest create revision, and that revision is its fencing token. A waiter watches only its
 * predecessor's deletion (FIFO, one wake-up per release), checks that its own key still exists after
 * waking, and stops when its session ends. Cancelled waits remove their key before they reject.
 */
import "./dispose.js";
import { fromWire } from "../proto/int64.js";
import type { KeyValue, TxnResponse } from "../proto/types.js";
import { publish } from "./diagnostics.js";
import {
  AbortedError,
  ClientClosedError,
  InvalidArgumentError,
  LockLostError,
  LockTimeoutError,
} from "./errors.js";
import { lockKey, lockPrefix, prefixRangeEnd } from "./keys.js";
import { acquireTxn, attemptNonce, deleteIfTxn, type LockKeys, predecessorTxn, txn } from "./kv.js";
import type { LocalQueue } from "./local-queue.js";
import { Lock } from "./lock.js";
import { type LockStatus, readLockStatus } from "./lock-status.js";
import type { Session } from "./session.js";
import { Wait, type WaitOptions } from "./wait.js";
import { waitForDelete } from "./watch.js";

/** Options of `lock()` and `tryLock()`. */
export type LockOptions = WaitOptions;

/** How many stale keys of this session one acquire removes before giving up. */
const MAX_STALE_RETRIES = 3;

/** A named lock, bound to one session. Create with `session.mutex(name)`. */
export class Mutex {
  /** The lock name; keys are `<name>/<leaseId hex>`. */
  readonly name: string;
  /** This session's key, `<name>/<leaseId hex>`. */
  readonly key: string;
  private readonly keys: LockKeys;

  /** @internal Use `session.mutex(name)`. */
  constructor(
    private readonly session: Session,
    name: string,
  ) {
    if (typeof name !== "string" || name.length === 0) throw new InvalidArgumentError("lock name is empty");
    this.name = name;
    this.key = lockKey(name, session.leaseId);
    const prefix = Buffer.from(lockPrefix(name));
    this.keys = { prefix, rangeEnd: prefixRangeEnd(prefix), key: Buffer.from(this.key) };
  }

  /**
   * Waits for the lock and resolves to the held `Lock`. Calls through the same session on the same name
   * queue locally in call order. Rejects with `SessionExpiredError` if the session ends first, with
   * `LockTimeoutError` after `timeoutMs`, with `AbortedError` if `signal` aborts, and with the transport's
   * typed error if etcd cannot be reached; in every case its waiter key is removed first (with a fresh,
   * bounded timeout). Each call is a new attempt; a second call waits behind the first.
   */
  async lock(options: LockOptions = {}): Promise<Lock> {
    const wait = new Wait("lock", this.name, options, this.session.signal);
    try {
      wait.check();
      const queue = this.session.queue(this.name);
      try {
        await queue.enter(wait.signal);
      } catch {
        this.session.releaseQueue(this.name);
        throw wait.reason();
      }
      const lock = await this.attempt(wait, queue, true, options);
      return lock as Lock;
    } finally {
      wait.dispose();
    }
  }

  /**
   * Takes the lock if nobody holds it or waits for it, without waiting: resolves to the held `Lock`, or to
   * `null` when someone else holds it (contention is a result, not an error). Its key is removed before it
   * resolves to `null`. Rejects like `lock()` if the session ends, on `timeoutMs`, on abort, or if etcd
   * cannot be reached.
   */
  async tryLock(options: LockOptions = {}): Promise<Lock | null> {
    const wait = new Wait("tryLock", this.name, options, this.session.signal);
    try {
      wait.check();
      const queue = this.session.queue(this.name);
      if (!queue.tryEnter()) return null;
      return await this.attempt(wait, queue, false, options);
    } finally {
      wait.dispose();
    }
  }

  /** Runs one acquisition holding the local turn; gives the turn back unless it returns a lock. */
  private async attempt(
    wait: Wait,
    queue: LocalQueue,
    block: boolean,
    options: LockOptions,
  ): Promise<Lock | null> {
    let revision: bigint | undefined;
    let keyMayExist = false;
    const reporter = new WaitingReporter(options, () => this.status({ signal: wait.signal }));
    try {
      const nonce = attemptNonce();
      let res: TxnResponse | undefined;
      for (let stale = 0; ; stale++) {
        keyMayExist = true;
        res = await txn(
          this.transport,
          acquireTxn(this.keys, this.session.leaseId, nonce),
          wait.signal,
          wait.deadline,
        );
        if (res.succeeded) break;
        const own = rangeKvs(res, 0)[0];
        if (own?.value.equals(nonce)) break;
        // A key of this session left by an earlier attempt whose cleanup failed: ours to remove.
        if (!own || stale >= MAX_STALE_RETRIES) throw new LockLostError(this.key);
        await txn(
          this.transport,
          deleteIfTxn(this.keys, fromWire(own.create_revision)),
          wait.signal,
          wait.deadline,
        );
      }
      revision = res.succeeded
        ? fromWire(res.header?.revision)
        : fromWire(rangeKvs(res, 0)[0]?.create_revision);
      const oldest = rangeKvs(res, 1)[0];
      if (oldest && fromWire(oldest.create_revision) === revision) return this.acquired(revision, queue);
      if (!block) {
        await this.removeKey(revision);
        keyMayExist = false;
        queue.leave();
        this.session.releaseQueue(this.name);
        return null;
      }
      const myRevision = revision;
      for (let queued = false; ; queued = true) {
        const found = await this.findPredecessor(revision, wait);
        if (!found.kv) return this.acquired(revision, queue);
        if (!queued) {
          publish({ event: "queued", name: this.name, key: this.key, revision });
          reporter.start();
        } else reporter.again();
        const predecessor = found.kv;
        await waitForDelete(
          this.transport,
          predecessor.key,
          fromWire(predecessor.create_revision),
          wait.signal,
          () => publish({ event: "wake", name: this.name, key: this.key, revision: myRevision }),
        );
      }
    } catch (raw) {
      const err =
        raw instanceof AbortedError && wait.signal.aborted ? wait.reason() : this.session.failed(raw);
      if (keyMayExist) await this.removeKey(revision);
      if (err instanceof LockTimeoutError) await this.explain(err);
      publish({ event: "cancelled", name: this.name, key: this.key, revision: revision ?? 0n });
      queue.leave();
      this.session.releaseQueue(this.name);
      throw err;
    } finally {
      reporter.stop();
    }
  }

  /**
   * Who holds the lock now, with the remaining TTL of the holder's lease, and how many keys wait behind it.
   * Three small reads. Rejects with `AbortedError` on abort, `CallTimeoutError` after `timeoutMs` (or the
   * client's call timeout), or the transport's typed error. Each call reads afresh.
   */
  status(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<LockStatus> {
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      return Promise.reject(new InvalidArgumentError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`));
    }
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    return readLockStatus(this.session.transport, this.name, this.keys, options.signal, deadline);
  }

  /** Names the holder in a timeout's message, read with a short fresh bound; leaves it alone if that fails. */
  private async explain(err: LockTimeoutError): Promise<void> {
    try {
      if (this.session.transport.isClosed) return;
      const { holder } = await this.status({ timeoutMs: 1000 });
      err.heldBy(holder);
    } catch {
      // The timeout is the error to report; who held the lock is a courtesy.
    }
  }

  /** The predecessor of our key, read only while our key exists; throws if our key is gone. */
  private async findPredecessor(revision: bigint, wait: Wait): Promise<{ kv: KeyValue | undefined }> {
    const res = await txn(this.transport, predecessorTxn(this.keys, revision), wait.signal, wait.deadline);
    if (!res.succeeded) {
      // Our key is gone: the lease ended (the session error says so), or someone deleted the key.
      await this.session.checkLease();
      wait.check();
      throw new LockLostError(this.key);
    }
    return { kv: rangeKvs(res, 0)[0] };
  }

  private acquired(revision: bigint, queue: LocalQueue): Lock {
    publish({ event: "acquired", name: this.name, key: this.key, revision });
    return new Lock(this.session, this.name, this.key, this.keys, revision, () => {
      queue.leave();
      this.session.releaseQueue(this.name);
    });
  }

  /**
   * Removes our key after a failed or cancelled attempt, with a fresh, bounded timeout (the caller's
   * signal may be the reason we are here). Guarded by the create revision when it is known. Never throws:
   * if it fails, the key goes with the lease.
   */
  private async removeKey(revision: bigint | undefined): Promise<void> {
    if (this.session.transport.isClosed) return;
    try {
      // No caller signal or deadline: the transport's own bound applies.
      if (revision !== undefined) await txn(this.transport, deleteIfTxn(this.keys, revision));
      else await this.transport.unary("KV", "DeleteRange", { key: this.keys.key }, { idempotent: true });
    } catch {
      // The key stays until the session's lease ends; the next attempt of this session removes it.
    }
  }

  private get transport() {
    if (this.session.transport.isClosed) throw new ClientClosedError();
    return this.session.transport;
  }
}

function rangeKvs(res: TxnResponse, i: number): KeyValue[] {
  return res.responses[i]?.response_range?.kvs ?? [];
}

/** Calls a waiter's `onWaiting` once it has waited long enough, and again when what it waits for changes. */
class WaitingReporter {
  private timer: NodeJS.Timeout | undefined;
  private fired = false;
  private stopped = false;

  constructor(
    private readonly options: LockOptions,
    private readonly read: () => Promise<LockStatus>,
  ) {}

  /** Arms the first report. */
  start(): void {
    if (!this.options.onWaiting || this.stopped) return;
    const after = this.options.waitingAfterMs ?? 1000;
    this.timer = setTimeout(() => {
      this.fired = true;
      this.report();
    }, after);
  }

  /** Reports again if the first report was due already. */
  again(): void {
    if (this.fired) this.report();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private report(): void {
    const onWaiting = this.options.onWaiting;
    if (!onWaiting || this.stopped) return;
    this.read().then(
      (status) => {
        if (this.stopped) return;
        try {
          onWaiting(status);
        } catch {
          // A callback's own failure must not break the wait.
        }
      },
      () => {},
    );
  }
}
