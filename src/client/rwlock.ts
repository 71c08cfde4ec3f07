/**
 * A fair distributed read-write lock with fencing tokens, on the mutex's queue (etcd's recipe layout):
 * readers put `<name>/read/<leaseId hex>`, writers `<name>/write/<leaseId hex>`, under the session's lease.
 * All keys under `<name>/` form one queue ordered by create revision. A reader holds once no writer key
 * is older than its own, so it waits only on the newest earlier writer; a writer holds once no key at all
 * is older, so it waits only on its immediate predecessor. A reader that arrives after a waiting writer
 * queues behind it: FIFO, and writers never starve. Each waiter watches one key, checks after waking that
 * its own key still exists, and stops when its session ends; a cancelled wait removes its key.
 *
 * Tokens are create revisions, as for the mutex. A writer's token is larger than every earlier holder's
 * and smaller than every later one's; a reader's token is larger than every earlier writer's and smaller
 * than every later writer's (readers among themselves are unordered: they hold together). So a resource
 * that refuses any token lower than the highest it has seen, on reads as well as writes, refuses the late
 * write of a writer and the late read of a reader that lost the lock to a later writer.
 */
import "./dispose.js";
import { fromWire } from "../proto/int64.js";
import type { TxnResponse } from "../proto/types.js";
import { publish } from "./diagnostics.js";
import { AbortedError, ClientClosedError, InvalidArgumentError, LockLostError } from "./errors.js";
import { lockPrefix, prefixRangeEnd } from "./keys.js";
import { acquireTxn, attemptNonce, deleteIfTxn, type LockKeys, predecessorTxn, txn } from "./kv.js";
import { Lock } from "./lock.js";
import type { Session } from "./session.js";
import { Wait, type WaitOptions } from "./wait.js";
import { waitForDelete } from "./watch.js";

/** Options of `readLock()` and `writeLock()`. */
export type RWLockOptions = WaitOptions;

/** How many stale keys of this session one acquire removes before giving up. */
const MAX_STALE_RETRIES = 3;

/** A named read-write lock, bound to one session. Create with `session.rwlock(name)`. */
export class RWLock {
  /** The lock name; keys are `<name>/read/<leaseId hex>` and `<name>/write/<leaseId hex>`. */
  readonly name: string;
  private readonly queue: { prefix: Buffer; rangeEnd: Buffer };
  private readonly writers: { prefix: Buffer; rangeEnd: Buffer };

  /** @internal Use `session.rwlock(name)`. */
  constructor(
    private readonly session: Session,
    name: string,
  ) {
    if (typeof name !== "string" || name.length === 0) throw new InvalidArgumentError("lock name is empty");
    this.name = name;
    const queue = Buffer.from(lockPrefix(name));
    const writers = Buffer.from(`${lockPrefix(name)}write/`);
    this.queue = { prefix: queue, rangeEnd: prefixRangeEnd(queue) };
    this.writers = { prefix: writers, rangeEnd: prefixRangeEnd(writers) };
  }

  /**
   * Waits until no writer that arrived earlier holds or waits, and resolves to the held read `Lock`
   * (shared with other readers). Two `readLock()` calls through one session share one key, so the second
   * waits (locally) for the first to unlock; a `writeLock()` of a session that holds a read lock on the
   * same name waits for itself forever: unlock first. Rejects like `mutex.lock()`: `SessionExpiredError`
   * when the session ends, `LockTimeoutError` after `timeoutMs`, `AbortedError` when `signal` aborts,
   * `LockLostError` if someone deletes the waiter's key, transport errors; the key is removed first.
   */
  readLock(options: RWLockOptions = {}): Promise<Lock> {
    return this.acquire("read", options);
  }

  /**
   * Waits until every earlier reader and writer has unlocked, and resolves to the held write `Lock`
   * (exclusive). Calls through one session queue locally in call order. Rejects like `readLock()`.
   */
  writeLock(options: RWLockOptions = {}): Promise<Lock> {
    return this.acquire("write", options);
  }

  private async acquire(kind: "read" | "write", options: RWLockOptions): Promise<Lock> {
    const key = `${lockPrefix(this.name)}${kind}/${this.session.leaseId.toString(16)}`;
    const own: LockKeys = { ...this.queue, key: Buffer.from(key) };
    // What this waiter waits for: every older key if it writes, only older writers if it reads.
    const blockers: LockKeys = kind === "write" ? own : { ...this.writers, key: own.key };
    const wait = new Wait(`${kind}Lock`, this.name, options, this.session.signal);
    const queue = this.session.queue(key);
    try {
      wait.check();
      try {
        await queue.enter(wait.signal);
      } catch {
        this.session.releaseQueue(key);
        throw wait.reason();
      }
      let revision: bigint | undefined;
      let keyMayExist = false;
      try {
        keyMayExist = true;
        revision = await this.enqueue(own, wait);
        const myRevision = revision;
        for (let queued = false; ; queued = true) {
          const found = await txn(
            this.transport,
            predecessorTxn(blockers, revision),
            wait.signal,
            wait.deadline,
          );
          if (!found.succeeded) {
            await this.session.checkLease();
            wait.check();
            throw new LockLostError(key);
          }
          const predecessor = found.responses[0]?.response_range?.kvs[0];
          if (!predecessor) break;
          if (!queued) publish({ event: "queued", name: this.name, key, revision });
          await waitForDelete(
            this.transport,
            predecessor.key,
            fromWire(predecessor.create_revision),
            wait.signal,
            () => publish({ event: "wake", name: this.name, key, revision: myRevision }),
          );
        }
        publish({ event: "acquired", name: this.name, key, revision });
        return new Lock(this.session, this.name, key, own, revision, () => {
          queue.leave();
          this.session.releaseQueue(key);
        });
      } catch (raw) {
        const err =
          raw instanceof AbortedError && wait.signal.aborted ? wait.reason() : this.session.failed(raw);
        if (keyMayExist) await this.removeKey(own, revision);
        publish({ event: "cancelled", name: this.name, key, revision: revision ?? 0n });
        queue.leave();
        this.session.releaseQueue(key);
        throw err;
      }
    } finally {
      wait.dispose();
    }
  }

  /** Puts our key (if absent) and returns its create revision; removes stale keys of this session first. */
  private async enqueue(own: LockKeys, wait: Wait): Promise<bigint> {
    const nonce = attemptNonce();
    for (let stale = 0; ; stale++) {
      const res: TxnResponse = await txn(
        this.transport,
        acquireTxn(own, this.session.leaseId, nonce),
        wait.signal,
        wait.deadline,
      );
      if (res.succeeded) return fromWire(res.header?.revision);
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (kv?.value.equals(nonce)) return fromWire(kv.create_revision);
      // A key of this session left by an earlier attempt whose cleanup failed: ours to remove.
      if (!kv || stale >= MAX_STALE_RETRIES) throw new LockLostError(own.key.toString());
      await txn(this.transport, deleteIfTxn(own, fromWire(kv.create_revision)), wait.signal, wait.deadline);
    }
  }

  /** Removes our key after a failed or cancelled wait; never throws (if it fails, it goes with the lease). */
  private async removeKey(own: LockKeys, revision: bigint | undefined): Promise<void> {
    if (this.session.transport.isClosed) return;
    try {
      if (revision !== undefined) await txn(this.session.transport, deleteIfTxn(own, revision));
      else await this.session.transport.unary("KV", "DeleteRange", { key: own.key }, { idempotent: true });
    } catch {
      // The key stays until the session's lease ends; the next attempt of this session removes it.
    }
  }

  private get transport() {
    if (this.session.transport.isClosed) throw new ClientClosedError();
    return this.session.transport;
  }
}
