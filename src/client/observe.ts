/**
 * Observing an election's leaders. Reads the oldest candidate at revision R, then watches the whole prefix
 * from R + 1 and follows the events in order: with no leader, the first key put leads; a put on the
 * leader's key is a proclaimed value; the deletion of the leader's key makes the oldest candidate at that
 * revision the leader (read at exactly that revision). The revision of every event handled is kept, so
 * after a broken stream or a failover the watch resumes right after it: no change is missed, and a change
 * is reported only when the leader's key or its mod revision differs from the last one reported, so none
 * is repeated.
 */
import { fromWire, toWire } from "../proto/int64.js";
import {
  EventType,
  type KeyValue,
  type RangeResponse,
  type WatchRequest,
  type WatchResponse,
} from "../proto/types.js";
import { AbortedError, CompactedError, EtcdError } from "./errors.js";
import { isRetryable } from "./grpc-errors.js";
import { type LockKeys, oldestRange } from "./kv.js";
import type { OpenStream, Transport } from "./transport.js";

/** One leader as `leader()` and `observe()` report it. */
export interface LeaderInfo {
  /** The leader's key, `<prefix>/<leaseId hex>`. */
  key: string;
  /** Its value, as last proclaimed. */
  value: Buffer;
  /** Its token: the key's create revision. */
  token: bigint;
  /** The revision of the key's last put (the campaign, or the last proclaim). */
  modRevision: bigint;
  /** The lease the key is under. */
  leaseId: bigint;
}

/** Pause before watching again after the stream broke, in ms. */
const REWATCH_DELAY_MS = 50;

/** Responses buffered before the stream is paused until the observer catches up. */
const MAX_BUFFERED = 64;

/** @internal */
export function leaderOf(kv: KeyValue): LeaderInfo {
  return {
    key: kv.key.toString(),
    value: kv.value,
    token: fromWire(kv.create_revision),
    modRevision: fromWire(kv.mod_revision),
    leaseId: fromWire(kv.lease),
  };
}

/** @internal Use `election.observe()`. */
export async function* observeLeaders(
  transport: Transport,
  keys: LockKeys,
  signal: AbortSignal | undefined,
): AsyncGenerator<LeaderInfo> {
  const stop = signal ?? new AbortController().signal;
  const check = () => {
    if (stop.aborted) throw new AbortedError("observe", stop.reason);
  };
  let leader: LeaderInfo | undefined;
  let reported: LeaderInfo | undefined;
  const fresh = (l: LeaderInfo | undefined) =>
    l !== undefined && (reported?.key !== l.key || reported.modRevision !== l.modRevision);
  const oldestAt = async (revision: bigint | undefined) => {
    const range = { ...oldestRange(keys), revision: revision === undefined ? undefined : toWire(revision) };
    const res = await transport.unary<RangeResponse>("KV", "Range", range, {
      signal: stop,
      idempotent: true,
    });
    const kv = res.kvs[0];
    return { leader: kv ? leaderOf(kv) : undefined, revision: fromWire(res.header?.revision) };
  };

  check();
  let first = await oldestAt(undefined);
  leader = first.leader;
  let seen = first.revision;
  if (fresh(leader)) {
    reported = leader;
    yield leader as LeaderInfo;
  }
  for (;;) {
    check();
    const watch = new PrefixWatch(transport, keys, seen + 1n, stop);
    try {
      for (;;) {
        const res = await watch.next();
        if (res === "again") break;
        if (res === "compacted") {
          // The revisions after `seen` are gone: start over from the present (changes between are lost).
          first = await oldestAt(undefined);
          leader = first.leader;
          seen = first.revision;
          if (fresh(leader)) {
            reported = leader;
            yield leader as LeaderInfo;
          }
          break;
        }
        for (const event of res.events) {
          const kv = event.kv;
          if (!kv) continue;
          const revision = fromWire(kv.mod_revision);
          if (event.type === EventType.PUT) {
            const put = leaderOf(kv);
            if (leader === undefined || (put.key === leader.key && put.token === leader.token)) leader = put;
          } else if (leader !== undefined && kv.key.toString() === leader.key) {
            leader = (await oldestAt(revision)).leader;
          }
          seen = revision;
          if (fresh(leader)) {
            reported = leader;
            yield leader as LeaderInfo;
          }
        }
      }
    } finally {
      watch.close();
    }
    await pause(stop);
  }
}

function pause(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, REWATCH_DELAY_MS);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * One watch stream on the prefix from `start`, turned into a pull: `next()` resolves to the next response
 * with events, `"again"` when the stream broke or its member was left (watch again), `"compacted"` when
 * `start` was compacted away. Rejects with `AbortedError` on abort and with a non-retryable stream error.
 */
class PrefixWatch {
  private stream: OpenStream<WatchRequest, WatchResponse> | undefined;
  private readonly buffer: WatchResponse[] = [];
  private end: "again" | "compacted" | { error: unknown } | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly opening: Promise<void>;
  private stopFollowing: () => void = () => {};
  private readonly onAbort = () => this.finish({ error: new AbortedError("observe", this.signal.reason) });

  constructor(
    private readonly transport: Transport,
    private readonly keys: LockKeys,
    private readonly start: bigint,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener("abort", this.onAbort, { once: true });
    this.opening = this.open();
  }

  private async open(): Promise<void> {
    let stream: OpenStream<WatchRequest, WatchResponse>;
    try {
      stream = await this.transport.stream<WatchRequest, WatchResponse>("Watch", "Watch", this.signal);
    } catch (err) {
      this.finish(isRetryable(err) ? "again" : { error: err });
      return;
    }
    if (this.closed) {
      stream.call.on("error", () => {});
      stream.call.cancel();
      return;
    }
    this.stream = stream;
    const { call } = stream;
    this.stopFollowing = this.transport.onFailover((from) => {
      if (from === stream.endpoint) this.finish("again");
    });
    call.on("data", (res: WatchResponse) => {
      if (res.canceled) {
        this.finish(
          fromWire(res.compact_revision) > 0n
            ? "compacted"
            : { error: new EtcdError(2, `watch canceled: ${res.cancel_reason}`) },
        );
        return;
      }
      this.buffer.push(res);
      if (this.buffer.length >= MAX_BUFFERED) call.pause();
      this.notify();
    });
    call.on("error", (raw: unknown) => {
      const err = stream.fail(raw);
      this.finish(err instanceof CompactedError ? "compacted" : isRetryable(err) ? "again" : { error: err });
    });
    call.on("end", () => this.finish("again"));
    call.write({
      create_request: {
        key: this.keys.prefix,
        range_end: this.keys.rangeEnd,
        start_revision: toWire(this.start),
      },
    });
  }

  async next(): Promise<WatchResponse | "again" | "compacted"> {
    await this.opening;
    for (;;) {
      const res = this.buffer.shift();
      if (res) {
        if (this.buffer.length < MAX_BUFFERED / 2) this.stream?.call.resume();
        return res;
      }
      const end = this.end;
      if (end !== undefined) {
        if (typeof end === "object") throw end.error;
        return end;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Stops the stream; events already buffered are still handed out, then the end. */
  private finish(end: "again" | "compacted" | { error: unknown }): void {
    if (this.end !== undefined) return;
    // An abort wins over buffered events: the observer stops at once.
    if (typeof end === "object" && end.error instanceof AbortedError) this.buffer.length = 0;
    this.end = end;
    this.close();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Closes the stream and removes every listener. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener("abort", this.onAbort);
    this.stopFollowing();
    const stream = this.stream;
    if (!stream) return;
    stream.call.removeAllListeners("data");
    stream.call.removeAllListeners("end");
    stream.call.removeAllListeners("error");
    stream.call.on("error", () => {});
    stream.call.cancel();
  }
}
