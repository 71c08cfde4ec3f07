/**
 * Large answers (a Range or a DeleteRange with `prev_kv` over many keys) are written into a buffer that
 * already holds gRPC's five-byte message prefix, and sent as they are. grpc-js, left alone, frames every
 * message it sends by copying it into a new buffer five bytes longer. For the 13 MB answer of a full
 * Range of 100,000 keys that copy lands in fresh memory, and the first touch of fresh memory is what
 * costs: about 3,300 page faults and 40 ms of lockd's thread on the development machine, a fifth of its
 * time on the answer (see docs/lockd.md, "Where the time goes").
 *
 * grpc-js has no option for this, so an interceptor gives each call's base call a `serializeMessage`
 * that passes a `GrpcFrame` through, and leaves every other answer to grpc-js's own. If a grpc-js release
 * no longer frames there, a frame's message is sent the usual way (copied), and
 * test/lockd/grpc-frame.test.ts fails.
 */
import type * as grpc from "@grpc/grpc-js";

/** gRPC's message prefix: one byte for "not compressed", then the message's length (big-endian uint32). */
export const PREFIX_BYTES = 5;

/** A protobuf message behind gRPC's prefix (uncompressed), ready to be sent as it is. */
export class GrpcFrame {
  /** `bytes`: the prefix (as `frameBuffer` writes it) and the message. */
  constructor(readonly bytes: Buffer) {}

  /** A frame of `message`, copied behind its prefix: for small messages. */
  static of(message: Buffer): GrpcFrame {
    const bytes = frameBuffer(message.length);
    message.copy(bytes, PREFIX_BYTES);
    return new GrpcFrame(bytes);
  }

  /** The message without the prefix: a view of the same memory, not a copy. */
  get message(): Buffer {
    return this.bytes.subarray(PREFIX_BYTES);
  }
}

/**
 * A buffer for a message of `messageBytes` bytes behind its prefix, the prefix written: the message goes
 * from offset `PREFIX_BYTES`. Its contents after the prefix are not initialized.
 */
export function frameBuffer(messageBytes: number): Buffer {
  const bytes = Buffer.allocUnsafe(PREFIX_BYTES + messageBytes);
  bytes[0] = 0;
  bytes.writeUInt32BE(messageBytes, 1);
  return bytes;
}

type Serialize = (value: unknown) => Buffer;

/** grpc-js's base call's `serializeMessage`, which sends a `GrpcFrame` as it is. */
function serializeMessage(this: object, value: unknown): Buffer {
  if (value instanceof GrpcFrame) return value.bytes;
  return (Object.getPrototypeOf(this) as { serializeMessage: Serialize }).serializeMessage.call(this, value);
}

/** True if `call` is grpc-js's base call, which frames and sends each message through `serializeMessage`. */
function framesMessages(call: unknown): call is { serializeMessage: Serialize } {
  const proto = Object.getPrototypeOf(call) as { serializeMessage?: unknown } | null;
  return typeof proto?.serializeMessage === "function";
}

/**
 * A server interceptor, placed before any that adds a layer: calls of the methods at `paths` send each
 * `GrpcFrame` answer's bytes as they are, and every other answer as grpc-js does; calls of other methods
 * are left as they are (nothing added to the calls a lock makes). It returns the call it is given and
 * changes nothing else; given the same call again, it sets the same method again. It never throws.
 */
export function sendFramesAsTheyAre(paths: Iterable<string>): grpc.ServerInterceptor {
  const framed = new Set(paths);
  return (method, call) => {
    if (framed.has(method.path) && framesMessages(call)) call.serializeMessage = serializeMessage;
    return call as grpc.ServerInterceptingCall;
  };
}
