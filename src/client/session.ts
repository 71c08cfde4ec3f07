/**
 * A session: one etcd lease shared by many locks, kept alive every TTL/3, with a local deadline and a
 * signal that aborts when the lease is lost. The signal is a hint, never a guarantee: a paused process
 * cannot run its timers, so only fencing tokens make a holder safe.
 */
import "./dispose.js";
import { setMaxListeners } from "node:events";
import { fromWire, toWire } from "../proto/int64.js";
import type {
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseTimeToLiveResponse,
} from "../proto/types.js";
import { Election } from "./election.js";
import { endStream } from "./end-stream.js";
import {
  EtcdError,
  InvalidArgumentError,
  LeaseNotFoundError,
  type SessionEndReason,
  SessionExpiredError,
} from "./errors.js";
import { LocalQueue } from "./local-queue.js";
import { Mutex } from "./mutex.js";
import { RWLock } from "./rwlock.js";
import { Semaphore } from "./semaphore.js";
import type { OpenStream, Transport } from "./transport.js";

/** Options of `client.session()`. */
export interface SessionOptions {
  /** Lease TTL in whole seconds, default 10. The server may grant a longer one; `session.ttl` is the granted TTL. */
  ttl?: number;
  /** Aborts the lease grant. */
  signal?: AbortSignal;
  /** Bound on the lease grant in ms; default the client's `callTimeoutMs`. */
  timeoutMs?: number;
}

/** Node's timers overflow past 2^31 - 1 ms (and then fire at once); long TTLs are re-armed in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Pause before opening the keep-alive stream again after it broke, in ms. */
const RECONNECT_DELAY_MS = 100;

/** Validates a TTL in seconds. */
export function checkTtl(ttl: number): number {
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 9_000_000_000) {
    throw new InvalidArgumentError(`ttl must be a whole number of seconds ≥ 1, got ${ttl}`);
  }
  return ttl;
}

/**
 * One lease and its keep-alive. Create with `client.session()`. Ends (its `signal` aborts with
 * `SessionExpiredError`) at the local deadline, when the server says the lease is gone, or on `close()`.
 */
export class Session {
  /** The lease id. */
  readonly leaseId: bigint;
  /** The granted TTL in seconds. */
  readonly ttl: number;
  /** Aborts with `SessionExpiredError` (reason `expired`, `revoked`, `not_found` or `closed`) when the session ends. */
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  /** Local deadline on the monotonic clock (`performance.now()`), which wall-clock steps cannot move. */
  private deadline: number;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stream: OpenStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse> | undefined;
  /** Send times of keep-alives not yet answered, oldest first (answers come in order). */
  private pending: number[] = [];
  private closing: Promise<void> | undefined;
  /** Set once the first keep-alive stream broke: later streams send a keep-alive at once. */
  private reconnected = false;
  private readonly queues = new Map<string, LocalQueue>();
  private readonly stopFollowing: () => void;

  /** @internal Use `client.session()`. */
  constructor(
    /** @internal */ readonly transport: Transport,
    leaseId: bigint,
    ttl: number,
    sentAt: number,
    private readonly onClose: (session: Session) => void,
  ) {
    this.leaseId = leaseId;
    this.ttl = ttl;
    this.signal = this.controller.signal;
    // Every lock and wait of the session listens to it; many at once is normal, not a leak.
    setMaxListeners(0, this.signal);
    this.deadline = sentAt + ttl * 1000;
    this.armDeadline();
    this.keepAliveTimer = setInterval(() => this.sendKeepAlive(), Math.min(MAX_TIMER_MS, (ttl * 1000) / 3));
    this.stopFollowing = transport.onFailover((from) => this.onFailover(from));
    this.openStream();
  }

  /**
   * Grants a lease and starts keeping it alive. Rejects with `AbortedError` if `signal` aborts, with
   * `CallTimeoutError` after `timeoutMs`, or with the transport's typed error.
   * @internal Use `client.session()`.
   */
  static async grant(
    transport: Transport,
    options: SessionOptions,
    onClose: (session: Session) => void,
  ): Promise<Session> {
    const ttl = checkTtl(options.ttl ?? 10);
    const sentAt = performance.now();
    const res = await transport.unary<LeaseGrantResponse>(
      "Lease",
      "LeaseGrant",
      { TTL: toWire(BigInt(ttl)), ID: "0" },
      {
        signal: options.signal,
        deadline: options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs,
        // A repeated grant leaves at most an unused lease behind, which expires after its TTL.
        idempotent: true,
      },
    );
    if (res.error) throw new EtcdError(2, res.error);
    return new Session(transport, fromWire(res.ID), Number(fromWire(res.TTL)), sentAt, onClose);
  }

  /**
   * True while the session has not ended and its local deadline has not passed. A hint for a last check
   * before I/O, not a guarantee: the lease can end a moment later. Only fencing is a guarantee.
   */
  isLive(): boolean {
    return !this.signal.aborted && performance.now() < this.deadline;
  }

  /** A mutex named `name` using this session's lease. Cheap; mutexes of the same name share a local queue. */
  mutex(name: string): Mutex {
    return new Mutex(this, name);
  }

  /**
   * The election `prefix` with this session's lease as candidate: etcd's layout, so `etcdctl elect` and Go
   * candidates take part. Cheap; an election shares its local queue with a mutex of the same name (they
   * share keys too).
   */
  election(prefix: string): Election {
    return new Election(this, prefix);
  }

  /** A read-write lock named `name` using this session's lease. Cheap. Use names apart from mutexes'. */
  rwlock(name: string): RWLock {
    return new RWLock(this, name);
  }

  /**
   * A counting semaphore named `name` with `permits` permits, using this session's lease. Cheap. Throws
   * `InvalidArgumentError` for an empty name or a `permits` that is not a whole number from 1 to 1000000.
   */
  semaphore(name: string, permits: number): Semaphore {
    return new Semaphore(this, name, permits);
  }

  /**
   * Ends the session: aborts `signal` (reason `closed`), stops the keep-alive and revokes the lease, which
   * deletes every key of this session, releasing its locks and waits. The revoke is bounded by the TTL (and
   * the call timeout); if it fails, the lease ends by itself within its TTL. Never rejects. A second call
   * returns the first call's promise.
   */
  close(): Promise<void> {
    this.closing ??= this.revoke();
    return this.closing;
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async revoke(): Promise<void> {
    this.end("closed");
    try {
      await this.transport.unary(
        "Lease",
        "LeaseRevoke",
        { ID: toWire(this.leaseId) },
        { deadline: Date.now() + this.ttl * 1000, idempotent: true },
      );
    } catch {
      // Already gone, or unreachable: either way the lease ends by its TTL.
    } finally {
      this.onClose(this);
    }
  }

  /**
   * Ends the session with `reason`; later calls do nothing.
   * @internal
   */
  end(reason: SessionEndReason, cause?: unknown): void {
    if (this.signal.aborted) return;
    clearTimeout(this.deadlineTimer);
    clearInterval(this.keepAliveTimer);
    clearTimeout(this.reconnectTimer);
    this.stopFollowing();
    this.closeStream();
    this.controller.abort(new SessionExpiredError(reason, this.leaseId, { cause }));
    // The local deadline passing does not mean the server let the lease go yet; free its keys sooner.
    if (reason === "expired") void this.close();
  }

  /**
   * Called by the mutex when a request using the lease failed with `err`: ends the session if the lease
   * is gone, and returns the error to throw.
   * @internal
   */
  failed(err: unknown): unknown {
    if (err instanceof LeaseNotFoundError) this.end("not_found", err);
    return this.signal.aborted && err instanceof LeaseNotFoundError ? this.signal.reason : err;
  }

  /**
   * Asks the server whether the lease still exists; ends the session (`not_found`) if not.
   * @internal
   */
  async checkLease(): Promise<void> {
    const res = await this.transport.unary<LeaseTimeToLiveResponse>(
      "Lease",
      "LeaseTimeToLive",
      { ID: toWire(this.leaseId) },
      { idempotent: true },
    );
    if (fromWire(res.TTL) < 0n) this.end("not_found");
  }

  /**
   * The local queue of lock name `name`.
   * @internal
   */
  queue(name: string): LocalQueue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new LocalQueue();
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Drops the local queue of `name` once nobody uses it.
   * @internal
   */
  releaseQueue(name: string): void {
    if (this.queues.get(name)?.idle) this.queues.delete(name);
  }

  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, this.deadline - performance.now()));
    this.deadlineTimer = setTimeout(() => this.checkDeadline(), delay);
  }

  private checkDeadline(): void {
    if (performance.now() >= this.deadline) this.end("expired");
    else this.armDeadline();
  }

  private sendKeepAlive(): void {
    const stream = this.stream;
    if (!stream || this.signal.aborted) return;
    const now = performance.now();
    const oldest = this.pending[0];
    // No answer for a whole interval: the member is frozen or cut off without closing the stream.
    if (oldest !== undefined && now - oldest >= (this.ttl * 1000) / 3) {
      this.transport.failover(stream.endpoint);
      this.onStreamBroken(stream, undefined);
      return;
    }
    this.pending.push(now);
    stream.call.write({ ID: toWire(this.leaseId) });
  }

  private onFailover(from: string): void {
    const stream = this.stream;
    if (stream && stream.endpoint === from) this.onStreamBroken(stream, undefined);
  }

  private onAck(res: LeaseKeepAliveResponse): void {
    const sentAt = this.pending.shift();
    if (this.signal.aborted || sentAt === undefined) return;
    const now = performance.now();
    // An ack that arrives after the deadline (say, after a freeze) cannot revive the session.
    if (now >= this.deadline) {
      this.end("expired");
      return;
    }
    const ttl = fromWire(res.TTL);
    if (ttl <= 0n) {
      this.end("revoked");
      return;
    }
    this.deadline = Math.max(this.deadline, sentAt + Number(ttl) * 1000);
    this.armDeadline();
  }

  private openStream(): void {
    if (this.signal.aborted) return;
    this.transport.stream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>("Lease", "LeaseKeepAlive").then(
      (stream) => {
        if (this.signal.aborted) {
          endStream(stream.call);
          return;
        }
        this.stream = stream;
        this.pending = [];
        stream.call.on("data", (res: LeaseKeepAliveResponse) => this.onAck(res));
        stream.call.on("error", (err: unknown) => this.onStreamBroken(stream, err));
        stream.call.on("end", () => this.onStreamBroken(stream, undefined));
        // The first keep-alive at once if this replaces a broken stream; on a new session, TTL/3 later.
        if (this.reconnected) this.sendKeepAlive();
      },
      () => this.scheduleReconnect(),
    );
  }

  private onStreamBroken(stream: OpenStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>, err: unknown) {
    if (this.stream !== stream) return;
    if (err !== undefined) stream.fail(err);
    this.closeStream();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.signal.aborted || this.transport.isClosed) return;
    this.reconnected = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.openStream(), RECONNECT_DELAY_MS);
  }

  private closeStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.pending = [];
    if (!stream) return;
    endStream(stream.call);
  }
}
