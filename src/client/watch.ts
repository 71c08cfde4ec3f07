/**
 * Waiting for one key's deletion. The watch starts at the server's current revision W (given in its
 * "created" reply), and the key is read at W: if it is already gone there, the wait ends at once; if not,
 * its deletion comes after W and the watch delivers it. Together they miss nothing, and the watch is a
 * live one: etcd delivers the events of a watch that starts in the past from a loop that runs every
 * 100 ms, which would put up to 100 ms on every hand-over. Survives the loss of the member in use by
 * watching and reading again on the next endpoint.
 */
import { fromWire, toWire } from "../proto/int64.js";
import {
  EventType,
  FilterType,
  type RangeResponse,
  type WatchRequest,
  type WatchResponse,
} from "../proto/types.js";
import { endStream } from "./end-stream.js";
import { AbortedError, EtcdError } from "./errors.js";
import { isRetryable } from "./grpc-errors.js";
import type { Transport } from "./transport.js";

/** Pause before watching again after the stream broke, in ms. */
const REWATCH_DELAY_MS = 50;

/**
 * Resolves once `key` is no longer the key created at `createRevision` (deleted, or deleted and created
 * again). Calls `onEvent` once per wake-up: each delete event delivered, or the read that found the key
 * already gone. Rejects with `AbortedError` (cause: the signal's reason) when `signal` aborts, and with the
 * stream's typed error when it fails for a reason other than an unavailable member.
 */
export async function waitForDelete(
  transport: Transport,
  key: Buffer,
  createRevision: bigint,
  signal: AbortSignal,
  onEvent: () => void,
): Promise<void> {
  for (;;) {
    if (signal.aborted) throw new AbortedError("watch", signal.reason);
    const outcome = await watchOnce(transport, { key, createRevision }, signal, onEvent);
    if (outcome === "deleted") return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, REWATCH_DELAY_MS);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}

/** The key a waiter waits on: its name and the revision that created it. */
interface Target {
  key: Buffer;
  createRevision: bigint;
}

/** True if `key` no longer is the one created at `createRevision`, as of `revision`. */
async function goneAt(transport: Transport, target: Target, revision: bigint, signal: AbortSignal) {
  const res = await transport.unary<RangeResponse>(
    "KV",
    "Range",
    { key: target.key, revision: toWire(revision), keys_only: true },
    { signal, idempotent: true },
  );
  const kv = res.kvs[0];
  return !kv || fromWire(kv.create_revision) !== target.createRevision;
}

async function watchOnce(
  transport: Transport,
  target: Target,
  signal: AbortSignal,
  onEvent: () => void,
): Promise<"deleted" | "again"> {
  const { key } = target;
  const stream = await transport.stream<WatchRequest, WatchResponse>("Watch", "Watch", signal);
  const { call } = stream;
  return new Promise<"deleted" | "again">((resolve, reject) => {
    let settled = false;
    // A member that stopped answering without closing the stream (frozen, cut off) is left by the
    // other calls; the watch follows them to the next member.
    const stopFollowing = transport.onFailover((from) => {
      if (from === stream.endpoint) finish(() => resolve("again"));
    });
    const finish = (action: () => void) => {
      if (settled) return;
      settled = true;
      stopFollowing();
      signal.removeEventListener("abort", onAbort);
      endStream(call);
      action();
    };
    const onAbort = () => finish(() => reject(new AbortedError("watch", signal.reason)));
    signal.addEventListener("abort", onAbort, { once: true });
    call.on("data", (res: WatchResponse) => {
      if (res.created && !res.canceled) {
        goneAt(transport, target, fromWire(res.header?.revision), signal).then(
          (gone) => {
            if (!gone || settled) return;
            onEvent();
            finish(() => resolve("deleted"));
          },
          // Unknown whether it went before the watch began: watch and read again.
          () => finish(() => resolve("again")),
        );
      }
      if (res.canceled) {
        finish(() => reject(new EtcdError(2, `watch canceled: ${res.cancel_reason}`)));
        return;
      }
      for (const event of res.events) {
        onEvent();
        if (event.type === EventType.DELETE) {
          finish(() => resolve("deleted"));
          return;
        }
      }
    });
    call.on("error", (raw: unknown) => {
      const err = stream.fail(raw);
      finish(() => (isRetryable(err) ? resolve("again") : reject(err)));
    });
    call.on("end", () => finish(() => resolve("again")));
    call.write({
      create_request: { key, filters: [FilterType.NOPUT] },
    });
  });
}
