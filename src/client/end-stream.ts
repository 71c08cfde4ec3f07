/**
 * Ending a watch stream without resetting it. Cancelling a gRPC call resets its HTTP/2 stream
 * (RST_STREAM), and a server built on nghttp2 1.57 or later (Node's, so lockd's) allows a connection
 * 1,000 resets at once and then 33 a second, and closes the connection with GOAWAY (internal error) past
 * that: every call on it fails. A waiter that cancels its watch at each hand-over crosses that within
 * seconds under contention. So a stream that is done is half-closed instead, and the server ends it
 * (etcd and lockd end a watch stream when the client's side ends); only one that is not ended in time
 * is reset.
 */
import type * as grpc from "@grpc/grpc-js";

/** How long the server may take to end a half-closed stream before it is reset after all, in ms. */
export const END_GRACE_MS = 5_000;

/** Marks a call already being ended. */
const ENDING = Symbol("ending");

/**
 * Half-closes `call` and lets the server end it, discarding whatever still arrives on it; resets it
 * only if it is still open after `END_GRACE_MS`. Takes over the call: its `data`, `end` and `error`
 * listeners are removed. A second call does nothing more.
 */
export function endStream<Req, Res>(call: grpc.ClientDuplexStream<Req, Res>): void {
  if ((call as { [ENDING]?: true })[ENDING]) return;
  (call as { [ENDING]?: true })[ENDING] = true;
  call.removeAllListeners("data");
  call.removeAllListeners("end");
  call.removeAllListeners("error");
  // Flowing, so replies still on their way cannot hold the stream open on flow control.
  call.on("data", () => {});
  call.on("error", () => {});
  const timer = setTimeout(() => call.cancel(), END_GRACE_MS);
  timer.unref();
  call.once("status", () => clearTimeout(timer));
  call.end();
}
