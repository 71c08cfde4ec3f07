/** A held lock: its fencing token, its key, a signal that aborts when it can no longer be trusted, and unlock. */
import "./dispose.js";
import { fromWire } from "../proto/int64.js";
import type { TxnResponse } from "../proto/types.js";
import { publish } from "./diagnostics.js";
import { InvalidArgumentError, LockNotHeldError, LockReleasedError } from "./errors.js";
import { type GuardedOp, type GuardedTxnResult, guardedResults, guardedTxnRequest } from "./guarded-txn.js";
import { deleteIfTxn, type LockKeys, txn } from "./kv.js";
import type { Session } from "./session.js";

/** A lock held through a session. Returned by `mutex.lock()` and `mutex.tryLock()`. */
export class Lock {
  /** The fencing token: the create revision of the lock key. Strictly increases from holder to holder. */
  readonly token: bigint;
  /** The lock key, `<name>/<leaseId hex>`. */
  readonly key: string;
  private controller: AbortController | undefined;
  private released = false;
  private readonly onSessionEnd = () => this.controller?.abort(this.session.signal.reason);
  private unlocking: Promise<void> | undefined;
  private turnGiven = false;

  /** @internal Created by `Mutex`. */
  constructor(
    private readonly session: Session,
    private readonly name: string,
    key: string,
    private readonly keys: LockKeys,
    token: bigint,
    private readonly giveTurn: () => void,
  ) {
    this.key = key;
    this.token = token;
  }

  /**
   * Aborts with `SessionExpiredError` when the session ends (the lock may then be held by someone else),
   * and with `LockReleasedError` on `unlock()`. A hint: check it before I/O, but rely on the token.
   * Made on first use, so locks nobody asks this of cost no listener.
   */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.released) this.controller.abort(new LockReleasedError(this.key));
      else if (this.session.signal.aborted) this.onSessionEnd();
      else this.session.signal.addEventListener("abort", this.onSessionEnd, { once: true });
    }
    return this.controller.signal;
  }

  /**
   * Releases the lock: deletes the key only if it still has this lock's create revision, so a late unlock
   * never touches a newer holder's key. Aborts `signal` with `LockReleasedError` and lets the next local
   * `lock()` of the same session go on. Resolves without error if the session has already ended (its key
   * went with the lease). Rejects with the transport's typed error if etcd cannot be reached while the
   * session is live; the key then goes with the lease, or with the session's next attempt on this name.
   * Idempotent: once it resolved, later calls resolve at once; after a rejection, a later call tries again.
   */
  unlock(): Promise<void> {
    this.unlocking ??= this.release().catch((err: unknown) => {
      this.unlocking = undefined;
      throw err;
    });
    return this.unlocking;
  }

  /**
   * The etcd guard: runs `ops` (puts, deletes, gets on keys outside the lock's own prefix) as one etcd
   * transaction that commits only if the lock key still has this lock's create revision, its token. Resolves
   * with the commit revision and each operation's result. Rejects with `LockNotHeldError` if the lock is no
   * longer held (the lease expired, the lock was released: also at once after `unlock()`), and then nothing
   * was written; with `InvalidArgumentError` for bad operations (nothing sent); with `AbortedError` if
   * `signal` aborts, `CallTimeoutError` after `timeoutMs` (or the client's call timeout), or another
   * transport error, after which the transaction may or may not have committed. Never retried by itself.
   */
  async txn(
    ops: GuardedOp[],
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<GuardedTxnResult> {
    const request = guardedTxnRequest(this.keys.key, this.keys.prefix, this.token, ops);
    const { signal, timeoutMs } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`);
    }
    if (this.released) throw new LockNotHeldError(this.key, this.token);
    const res = await this.session.transport.unary<TxnResponse>("KV", "Txn", request, {
      signal,
      deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
      idempotent: false,
    });
    if (!res.succeeded) throw new LockNotHeldError(this.key, this.token);
    return { revision: fromWire(res.header?.revision), results: guardedResults(res.responses) };
  }

  /** Same as `unlock()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.unlock();
  }

  private async release(): Promise<void> {
    this.released = true;
    this.session.signal.removeEventListener("abort", this.onSessionEnd);
    this.controller?.abort(new LockReleasedError(this.key));
    const transport = this.session.transport;
    try {
      if (!transport.isClosed) {
        await txn(transport, deleteIfTxn(this.keys, this.token));
      }
    } catch (err) {
      if (!this.session.signal.aborted) throw err;
    } finally {
      if (!this.turnGiven) {
        this.turnGiven = true;
        this.giveTurn();
      }
    }
    publish({ event: "released", name: this.name, key: this.key, revision: this.token });
  }
}
