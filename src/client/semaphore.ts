/**
 * A fair distributed counting semaphore: at most `permits` holders at once, served in arrival order.
 * Waiters line up on a fair mutex, `<name>/queue` (FIFO, each waits on its predecessor only). The mutex's
 * holder is the head of the line, the only waiter that may take a permit: it counts the holder keys under
 * `<name>/holders/`, and while there are `permits` of them it watches that prefix and wakes on a holder's
 * release, which is exactly a permit it can take. It then puts `<name>/holders/<leaseId hex>` under its
 * lease in a Txn guarded by its own queue key (a head that lost its place adds nothing) and unlocks the
 * queue, waking the next in line. Only the head adds holders, so the count cannot grow between its read
 * and its put; a holder's lease bounds its permit, as a lock's bounds the lock.
 *
 * There is no sound per-permit fencing: holders hold together, so a resource cannot tell a stale holder's
 * token from a live concurrent holder's. A permit's token (its key's create revision) names the holding,
 * and `permit.txn()` writes to etcd only while the permit is held, but a resource outside etcd can only be
 * protected by counting live holders itself.
 */
import "./dispose.js";
import { fromWire, toWire } from "../proto/int64.js";
import { CompareResult, CompareTarget, type RangeResponse, type TxnRequest } from "../proto/types.js";
import { publish } from "./diagnostics.js";
import { AbortedError, ClientClosedError, InvalidArgumentError, LockLostError } from "./errors.js";
import { lockPrefix, prefixRangeEnd } from "./keys.js";
import { type LockKeys, txn } from "./kv.js";
import { Lock } from "./lock.js";
import { waitForPrefixDelete } from "./prefix-watch.js";
import type { Session } from "./session.js";
import { Wait, type WaitOptions } from "./wait.js";

/** Options of `acquire()`. */
export type SemaphoreOptions = WaitOptions;

/** A named counting semaphore, bound to one session. Create with `session.semaphore(name, permits)`. */
export class Semaphore {
  /** The semaphore name; holders' keys are `<name>/holders/<leaseId hex>`. */
  readonly name: string;
  /** The most holders at once. Every user of a name must pass the same number. */
  readonly permits: number;
  private readonly holders: LockKeys;

  /** @internal Use `session.semaphore(name, permits)`. */
  constructor(
    private readonly session: Session,
    name: string,
    permits: number,
  ) {
    if (typeof name !== "string" || name.length === 0)
      throw new InvalidArgumentError("semaphore name is empty");
    if (!Number.isInteger(permits) || permits < 1 || permits > 1_000_000) {
      throw new InvalidArgumentError(`permits must be a whole number from 1 to 1000000, got ${permits}`);
    }
    this.name = name;
    this.permits = permits;
    const prefix = Buffer.from(`${lockPrefix(name)}holders/`);
    this.holders = {
      prefix,
      rangeEnd: prefixRangeEnd(prefix),
      key: Buffer.from(`${prefix.toString()}${session.leaseId.toString(16)}`),
    };
  }

  /**
   * Waits for a permit, in arrival order, and resolves to it as a `Lock` (`unlock()` gives the permit back;
   * its `signal` aborts when the session ends). One permit per session at a time: a second call through the
   * same session waits (locally) until the first is given back. Rejects with `SessionExpiredError` if the
   * session ends first, `LockTimeoutError` after `timeoutMs`, `AbortedError` if `signal` aborts,
   * `LockLostError` if its place in line was deleted by someone else, or a transport error; its keys are
   * removed first.
   */
  async acquire(options: SemaphoreOptions = {}): Promise<Lock> {
    const key = this.holders.key.toString();
    const wait = new Wait("acquire", this.name, options, this.session.signal);
    const local = this.session.queue(key);
    try {
      wait.check();
      try {
        await local.enter(wait.signal);
      } catch {
        this.session.releaseQueue(key);
        throw wait.reason();
      }
      const release = () => {
        local.leave();
        this.session.releaseQueue(key);
      };
      let head: Lock;
      try {
        head = await this.session.mutex(`${lockPrefix(this.name)}queue`).lock({ signal: wait.signal });
      } catch (err) {
        release();
        throw wait.signal.aborted ? wait.reason() : err;
      }
      try {
        const token = await this.take(head, wait);
        publish({ event: "acquired", name: this.name, key, revision: token });
        return new Lock(this.session, this.name, key, this.holders, token, release);
      } catch (raw) {
        const err =
          raw instanceof AbortedError && wait.signal.aborted ? wait.reason() : this.session.failed(raw);
        // Our holder key, if a repeated put left it: no other permit of this session can exist.
        if (!this.session.transport.isClosed) {
          await this.session.transport
            .unary("KV", "DeleteRange", { key: this.holders.key }, { idempotent: true })
            .catch(() => {});
        }
        release();
        throw err;
      } finally {
        // The next in line becomes the head; if this fails the queue key goes with the lease.
        await head.unlock().catch(() => {});
      }
    } finally {
      wait.dispose();
    }
  }

  /** As the head of the line: waits until fewer than `permits` hold, then adds our holder key. */
  private async take(head: Lock, wait: Wait): Promise<bigint> {
    for (;;) {
      const count = await this.transport.unary<RangeResponse>(
        "KV",
        "Range",
        { key: this.holders.prefix, range_end: this.holders.rangeEnd, count_only: true },
        { signal: wait.signal, deadline: wait.deadline, idempotent: true },
      );
      const key = this.holders.key.toString();
      if (fromWire(count.count) < BigInt(this.permits)) {
        const res = await txn(this.transport, this.putHolderTxn(head), wait.signal, wait.deadline);
        if (!res.succeeded) throw new LockLostError(head.key);
        return fromWire(res.header?.revision);
      }
      publish({ event: "queued", name: this.name, key, revision: 0n });
      await waitForPrefixDelete(
        this.transport,
        this.holders,
        fromWire(count.header?.revision),
        wait.signal,
        () => publish({ event: "wake", name: this.name, key, revision: 0n }),
      );
    }
  }

  /** Puts our holder key only while we are still the head of the line and hold no permit already. */
  private putHolderTxn(head: Lock): TxnRequest {
    return {
      compare: [
        {
          result: CompareResult.EQUAL,
          target: CompareTarget.CREATE,
          key: Buffer.from(head.key),
          create_revision: toWire(head.token),
        },
        {
          result: CompareResult.EQUAL,
          target: CompareTarget.CREATE,
          key: this.holders.key,
          create_revision: "0",
        },
      ],
      success: [
        {
          request_put: { key: this.holders.key, value: Buffer.alloc(0), lease: toWire(this.session.leaseId) },
        },
      ],
    };
  }

  private get transport() {
    if (this.session.transport.isClosed) throw new ClientClosedError();
    return this.session.transport;
  }
}
