/**
 * lockd's answers carry the HTTP/2 header fields etcd's do, and no more. grpc-js, left alone, sends three
 * more on every call: `date` (added by node:http2), `grpc-accept-encoding` and `grpc-encoding: identity`
 * (its defaults, though it never compresses an answer); it says `content-type: application/grpc+proto`
 * where etcd says `application/grpc`, and its trailers say `grpc-message: OK` where etcd's are empty.
 * Every client decodes and checks each field of every answer: a grpc-js client making 1,000 calls at once
 * spent 5 to 8% more CPU on them (see docs/lockd.md, "Where the time goes").
 *
 * grpc-js has no option for these, so the first interceptor of each call trims them on the call's HTTP/2
 * stream, reached through grpc-js's base call. If a grpc-js release no longer has that stream where this
 * looks, answers go out as grpc-js writes them, and lockd's header test fails.
 */
import type { OutgoingHttpHeaders, ServerHttp2Stream, ServerStreamResponseOptions } from "node:http2";
import type * as grpc from "@grpc/grpc-js";

/** grpc-js's `content-type`, and the one etcd sends (both are gRPC's; the suffix names the default). */
const GRPC_PROTO = "application/grpc+proto";
const GRPC = "application/grpc";

/** The fields of `headers` that etcd would send, `content-type` as etcd spells it. */
function etcdFields(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    // grpc-js still reads compressed requests; a client that compresses does not need to be told so.
    if (name === "grpc-accept-encoding") continue;
    // An answer never compressed says nothing of it: identity is what no header means.
    if (name === "grpc-encoding" && value === "identity") continue;
    out[name] = name === "content-type" && value === GRPC_PROTO ? GRPC : value;
  }
  return out;
}

type Respond = (headers?: OutgoingHttpHeaders, options?: ServerStreamResponseOptions) => void;
type SendTrailers = (trailers: OutgoingHttpHeaders) => void;

/** `respond` as node:http2 has it, without `date` (an option of node's own) and grpc-js's extra fields. */
function respond(
  this: ServerHttp2Stream,
  headers?: OutgoingHttpHeaders,
  options?: ServerStreamResponseOptions,
) {
  const own = (Object.getPrototypeOf(this) as { respond: Respond }).respond;
  own.call(this, headers && etcdFields(headers), {
    ...options,
    sendDate: false,
  } as ServerStreamResponseOptions);
}

/** `sendTrailers` as node:http2 has it, with an empty message on success, as etcd's. */
function sendTrailers(this: ServerHttp2Stream, trailers: OutgoingHttpHeaders) {
  const own = (Object.getPrototypeOf(this) as { sendTrailers: SendTrailers }).sendTrailers;
  const ok = String(trailers["grpc-status"]) === "0" && trailers["grpc-message"] === "OK";
  own.call(this, ok ? { ...trailers, "grpc-message": "" } : trailers);
}

function isServerStream(stream: unknown): stream is ServerHttp2Stream {
  const s = stream as Partial<ServerHttp2Stream> | null | undefined;
  return typeof s?.respond === "function" && typeof s.sendTrailers === "function";
}

/**
 * The first server interceptor of lockd's calls: the call's answer headers and trailers are etcd's set.
 * It adds no layer (it returns the call it is given) and changes nothing else of the call; given the
 * same call again, it sets the same two methods again. It never throws.
 */
export const etcdHeaders: grpc.ServerInterceptor = (_method, call) => {
  const stream = (call as unknown as { stream?: unknown }).stream;
  if (isServerStream(stream)) {
    stream.respond = respond;
    stream.sendTrailers = sendTrailers;
  }
  return call as grpc.ServerInterceptingCall;
};
