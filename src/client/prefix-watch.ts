/**
 * Watching every key under a prefix from a given revision, as a pull (`PrefixWatch`), and waiting for the
 * first deletion under a prefix after a revision (`waitForPrefixDelete`). Both resume after a broken
 * stream or a failover from the last revision handled, so nothing is missed.
 */
import { fromWire, toWire } from "../proto/int64.js";
import { EventType, type WatchRequest, type WatchResponse } from "../proto/types.js";
import { endStream } from "./end-stream.js";
import { AbortedError, CompactedError, EtcdError } from "./errors.js";
import { isRetryable } from "./grpc-errors.js";
import type { LockKeys } from "./kv.js";
import type { OpenStream, Transport } from "./transport.js";

/** Pause before watching again after the stream broke, in ms. */
const REWATCH_DELAY_MS = 50;

/** Responses buffered before the stream is paused until the reader catches up. */
const MAX_BUFFERED = 64;

/** Waits `REWATCH_DELAY_MS`, or less if `signal` aborts; never rejects. */
export function pause(signal: AbortSignal): Promise<void> {
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
 * Resolves once a key under `keys.prefix` is deleted at a revision after `after` (at once if that already
 * happened), and calls `onEvent` once when it does. Resolves too if `after` was compacted away (the caller
 * reads again). Rejects with `AbortedError` when `signal` aborts, and with a non-retryable stream error.
 */
export async function waitForPrefixDelete(
  transport: Transport,
  keys: LockKeys,
  after: bigint,
  signal: AbortSignal,
  onEvent: () => void,
): Promise<void> {
  let seen = after;
  for (;;) {
    if (signal.aborted) throw new AbortedError("watch", signal.reason);
    const watch = new PrefixWatch(transport, keys, seen + 1n, signal);
    try {
      for (;;) {
        const res = await watch.next();
        if (res === "again") break;
        if (res === "compacted") return;
        for (const event of res.events) {
          if (event.type === EventType.DELETE) {
            onEvent();
            return;
          }
          if (event.kv) seen = fromWire(event.kv.mod_revision);
        }
      }
    } finally {
      watch.close();
    }
    await pause(signal);
  }
}

/**
 * One watch stream on the prefix from `start`, turned into a pull: `next()` resolves to the next response
 * with events, `"again"` when the stream broke or its member was left (watch again), `"compacted"` when
 * `start` was compacted away. Rejects with `AbortedError` on abort and with a non-retryable stream error.
 */
export class PrefixWatch {
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
      endStream(stream.call);
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
    endStream(stream.call);
  }
}
