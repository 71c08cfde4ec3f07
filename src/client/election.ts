/**
 * Leader election with etcd's layout and semantics (Go `concurrency.Election`, `etcdctl elect`), so ours,
 * Go's and etcdctl's candidates share one queue. Each candidate puts `<prefix>/<leaseId hex>`, holding its
 * value, under its session's lease; the leader is the key with the lowest create revision, and that revision
 * is the leader's token (its epoch), usable for fencing like a lock token. A candidate waits on its
 * predecessor's deletion only (FIFO, one wake-up per hand-over), checks after waking that its own key still
 * exists, and stops when its session ends. A cancelled campaign removes its key before it rejects.
 * Leadership is kept until `resign()`, the end of the session, or the deletion of the key by someone else.
 */
import "./dispose.js";
import { fromWire } from "../proto/int64.js";
import type { KeyValue } from "../proto/types.js";
import { publish } from "./diagnostics.js";
import {
  AbortedError,
  ClientClosedError,
  InvalidArgumentError,
  LockLostError,
  NoLeaderError,
} from "./errors.js";
import { type Bytes, bytes as toBytes } from "./guarded-txn.js";
import { lockKey, lockPrefix, prefixRangeEnd } from "./keys.js";
import { campaignTxn, deleteIfTxn, type LockKeys, oldestRange, predecessorTxn, putIfTxn, txn } from "./kv.js";
import { Leadership } from "./leadership.js";
import type { LocalQueue } from "./local-queue.js";
import { type LeaderInfo, leaderOf, observeLeaders } from "./observe.js";
import type { Session } from "./session.js";
import { Wait, type WaitOptions } from "./wait.js";
import { waitForDelete } from "./watch.js";

/** Options of `campaign()`. */
export type CampaignOptions = WaitOptions;

/** Options of `leader()`. */
export interface LeaderOptions {
  /** Aborts the read; it then rejects with `AbortedError`. */
  signal?: AbortSignal;
  /** Bound on the read in ms; default the client's call timeout. */
  timeoutMs?: number;
}

/** An election, bound to one session. Create with `session.election(prefix)`. */
export class Election {
  /** The election's prefix; candidates' keys are `<prefix>/<leaseId hex>`. */
  readonly prefix: string;
  /** This session's candidate key, `<prefix>/<leaseId hex>`. */
  readonly key: string;
  private readonly keys: LockKeys;

  /** @internal Use `session.election(prefix)`. */
  constructor(
    private readonly session: Session,
    prefix: string,
  ) {
    if (typeof prefix !== "string" || prefix.length === 0) {
      throw new InvalidArgumentError("election prefix is empty");
    }
    this.prefix = prefix;
    this.key = lockKey(prefix, session.leaseId);
    const bytes = Buffer.from(lockPrefix(prefix));
    this.keys = { prefix: bytes, rangeEnd: prefixRangeEnd(bytes), key: Buffer.from(this.key) };
  }

  /**
   * Stands for election with `value` and resolves to the `Leadership` once this candidate leads. Calls
   * through the same session on the same prefix queue locally in call order (they share one key). A key of
   * this session already in the election (an earlier attempt whose removal failed) is taken over with the
   * new value, as etcd's `Campaign` does. Rejects with `SessionExpiredError` if the session ends first,
   * with `LockTimeoutError` after `timeoutMs`, with `AbortedError` if `signal` aborts, with
   * `LockLostError` if someone deletes the candidate key while it waits, and with the transport's typed
   * error if etcd cannot be reached; in every case the candidate key is removed first. Each call is a new
   * campaign; a second call waits behind the first one's leadership.
   */
  async campaign(value: Bytes, options: CampaignOptions = {}): Promise<Leadership> {
    const bytes = toBytes(value, "value");
    const wait = new Wait("campaign", this.prefix, options, this.session.signal);
    try {
      wait.check();
      const queue = this.session.queue(this.prefix);
      try {
        await queue.enter(wait.signal);
      } catch {
        this.session.releaseQueue(this.prefix);
        throw wait.reason();
      }
      return await this.stand(bytes, wait, queue);
    } finally {
      wait.dispose();
    }
  }

  /**
   * Who leads now: the candidate with the lowest create revision, its value and token. Rejects with
   * `NoLeaderError` when there is no candidate, `AbortedError` if `signal` aborts, `CallTimeoutError`
   * after `timeoutMs`, or the transport's typed error. Each call reads afresh.
   */
  async leader(options: LeaderOptions = {}): Promise<LeaderInfo> {
    const { signal, timeoutMs } = options;
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
      throw new InvalidArgumentError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`);
    }
    const res = await this.transport.unary<{ kvs: KeyValue[] }>("KV", "Range", oldestRange(this.keys), {
      signal,
      deadline: timeoutMs === undefined ? undefined : Date.now() + timeoutMs,
      idempotent: true,
    });
    const kv = res.kvs[0];
    if (!kv) throw new NoLeaderError(this.prefix);
    return leaderOf(kv);
  }

  /**
   * The leaders of this election as they change, for `for await`: first the leader now (if any), then
   * every new leader and every value a leader proclaims, each once and in order, none missed. Survives
   * the loss of the member in use by watching again from the last revision it saw. Ends with
   * `AbortedError` when `signal` aborts, and with `CompactedError` if it fell so far behind that the
   * revisions it needs were compacted. Stopping the loop (`break`) closes its watch. Each call is an
   * independent observer.
   */
  observe(options: { signal?: AbortSignal } = {}): AsyncIterable<LeaderInfo> {
    return observeLeaders(this.session.transport, this.keys, options.signal);
  }

  private async stand(value: Buffer, wait: Wait, queue: LocalQueue): Promise<Leadership> {
    let revision: bigint | undefined;
    let keyMayExist = false;
    try {
      keyMayExist = true;
      const res = await txn(
        this.transport,
        campaignTxn(this.keys, this.session.leaseId, value),
        wait.signal,
        wait.deadline,
      );
      if (res.succeeded) {
        revision = fromWire(res.header?.revision);
      } else {
        // Our own key (a repeat of this request, or a stale attempt): take it over with the new value.
        const own = res.responses[0]?.response_range?.kvs[0];
        if (!own) throw new LockLostError(this.key);
        revision = fromWire(own.create_revision);
        if (!own.value.equals(value)) {
          const put = await txn(
            this.transport,
            putIfTxn(this.keys, revision, this.session.leaseId, value),
            wait.signal,
            wait.deadline,
          );
          if (!put.succeeded) throw new LockLostError(this.key);
        }
      }
      const myRevision = revision;
      for (let queued = false; ; queued = true) {
        const found = await txn(
          this.transport,
          predecessorTxn(this.keys, revision),
          wait.signal,
          wait.deadline,
        );
        if (!found.succeeded) {
          // Our key is gone: the lease ended (the session error says so), or someone deleted it.
          await this.session.checkLease();
          wait.check();
          throw new LockLostError(this.key);
        }
        const predecessor = found.responses[0]?.response_range?.kvs[0];
        if (!predecessor) break;
        if (!queued) publish({ event: "queued", name: this.prefix, key: this.key, revision });
        await waitForDelete(
          this.transport,
          predecessor.key,
          fromWire(predecessor.create_revision),
          wait.signal,
          () => publish({ event: "wake", name: this.prefix, key: this.key, revision: myRevision }),
        );
      }
      publish({ event: "acquired", name: this.prefix, key: this.key, revision });
      return new Leadership(this.session, this.keys, revision, () => {
        queue.leave();
        this.session.releaseQueue(this.prefix);
      });
    } catch (raw) {
      const err =
        raw instanceof AbortedError && wait.signal.aborted ? wait.reason() : this.session.failed(raw);
      if (keyMayExist) await this.removeKey(revision);
      publish({ event: "cancelled", name: this.prefix, key: this.key, revision: revision ?? 0n });
      queue.leave();
      this.session.releaseQueue(this.prefix);
      throw err;
    }
  }

  /** Removes our key after a failed campaign; never throws (if it fails, the key goes with the lease). */
  private async removeKey(revision: bigint | undefined): Promise<void> {
    if (this.session.transport.isClosed) return;
    try {
      if (revision !== undefined) await txn(this.session.transport, deleteIfTxn(this.keys, revision));
      else
        await this.session.transport.unary("KV", "DeleteRange", { key: this.keys.key }, { idempotent: true });
    } catch {
      // The key stays until the session's lease ends; the next campaign of this session takes it over.
    }
  }

  private get transport() {
    if (this.session.transport.isClosed) throw new ClientClosedError();
    return this.session.transport;
  }
}
