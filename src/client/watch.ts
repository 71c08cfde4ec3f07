/**
 * Waiting for one key's deletion: a watch from a known revision, so a deletion that happened between the
 * read that found the key and the watch's creation is still seen. Survives the loss of the member in use by
 * watching again from the same revision on the next endpoint.
 */
import { toWire } from "../proto/int64.js";
import { EventType, FilterType, type WatchRequest, type WatchResponse } from "../proto/types.js";
import { AbortedError, EtcdError } from "./errors.js";
import { isRetryable } from "./grpc-errors.js";
import type { Transport } from "./transport.js";

/** Pause before watching again after the stream broke, in ms. */
const REWATCH_DELAY_MS = 50;

/**
 * Resolves once `key` is deleted at or after `fromRevision`, or when that can no longer be told (the
 * revision was compacted: the caller reads again). Calls `onEvent` for each event delivered. Rejects with
 * `AbortedError` (cause: the signal's reason) when `signal` aborts, and with the stream's typed error when it
 * fails for a reason other than an unavailable member.
 */
export async function waitForDelete(
  transport: Transport,
  key: Buffer,
  fromRevision: bigint,
  signal: AbortSignal,
  onEvent: () => void,
): Promise<void> {
  for (;;) {
    if (signal.aborted) throw new AbortedError("watch", signal.reason);
    const outcome = await watchOnce(transport, key, fromRevision, signal, onEvent);
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

async function watchOnce(
  transport: Transport,
  key: Buffer,
  fromRevision: bigint,
  signal: AbortSignal,
  onEvent: () => void,
): Promise<"deleted" | "again"> {
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
      call.removeAllListeners("data");
      call.removeAllListeners("end");
      // The stream's final 'error' (CANCELLED) must still have a listener.
      call.on("error", () => {});
      call.cancel();
      action();
    };
    const onAbort = () => finish(() => reject(new AbortedError("watch", signal.reason)));
    signal.addEventListener("abort", onAbort, { once: true });
    call.on("data", (res: WatchResponse) => {
      if (res.compact_revision && res.compact_revision !== "0") {
        finish(() => resolve("deleted"));
        return;
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
      create_request: { key, start_revision: toWire(fromRevision), filters: [FilterType.NOPUT] },
    });
  });
}
