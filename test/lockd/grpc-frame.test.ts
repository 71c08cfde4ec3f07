/**
 * Answers framed ahead (`GrpcFrame`) over a real grpc-js server and client on loopback: with lockd's
 * interceptor a frame is sent as it is (its method's encoder never sees it), any other answer is encoded
 * as usual; without it, or with it on other methods, the frame's message goes through the encoder and
 * arrives the same.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { GrpcFrame, sendFramesAsTheyAre } from "../../src/lockd/grpc-frame.js";

const PATH = "/fencelock.test.Frames/Answer";

/** A large answer: more than one HTTP/2 frame and flow-control window. */
const BIG = randomBytes(3 * 1024 * 1024 + 17);
const SMALL = Buffer.from("small answer");

interface Server {
  address: string;
  /** What the method's encoder was given, in order: "frame" for a `GrpcFrame`, else "bytes". */
  encoded: string[];
  stop(): Promise<void>;
}

async function start(interceptors: grpc.ServerInterceptor[]): Promise<Server> {
  const encoded: string[] = [];
  const echo: grpc.MethodDefinition<Buffer, unknown> = {
    path: PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    // As lockd's encoders do: a frame's message, for a call that frames it again.
    responseSerialize: (res: unknown) => {
      encoded.push(res instanceof GrpcFrame ? "frame" : "bytes");
      return res instanceof GrpcFrame ? res.message : (res as Buffer);
    },
    responseDeserialize: (b: Buffer) => b,
  };
  const server = new grpc.Server({ interceptors });
  server.addService({ Answer: echo } as grpc.ServiceDefinition, {
    Answer: (call: grpc.ServerUnaryCall<Buffer, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const what = call.request.toString();
      cb(null, what === "big" ? GrpcFrame.of(BIG) : what === "small-frame" ? GrpcFrame.of(SMALL) : SMALL);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    encoded,
    stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

function ask(client: grpc.Client, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      PATH,
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(what),
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : resolve(res as Buffer)),
    ),
  );
}

for (const [name, interceptors, framesEncoded] of [
  ["with lockd's interceptor, a frame is sent as it is", [sendFramesAsTheyAre([PATH])], 0],
  ["without it, a frame's message is encoded and framed by grpc-js", [], 2],
  ["with it on other methods only, the same", [sendFramesAsTheyAre(["/fencelock.test.Frames/Other"])], 2],
] as const) {
  describe(name, () => {
    let server: Server;
    let client: grpc.Client;
    before(async () => {
      server = await start([...interceptors]);
      client = new grpc.Client(server.address, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": -1,
      });
    });
    after(async () => {
      client?.close();
      await server?.stop();
    });

    test("answers arrive whole, and only what is not framed ahead is encoded", async () => {
      assert.deepEqual(await ask(client, "big"), BIG);
      assert.deepEqual(await ask(client, "small-frame"), SMALL);
      assert.deepEqual(await ask(client, "plain"), SMALL);
      assert.equal(server.encoded.filter((e) => e === "frame").length, framesEncoded);
      assert.deepEqual(
        server.encoded.filter((e) => e === "bytes"),
        ["bytes"],
      );
    });
  });
}

test("a frame's prefix says: not compressed, and the message's length", () => {
  const frame = GrpcFrame.of(Buffer.from("abc"));
  assert.deepEqual([...frame.bytes], [0, 0, 0, 0, 3, 97, 98, 99]);
  assert.deepEqual(frame.message, Buffer.from("abc"));
  assert.equal(frame.message.buffer, frame.bytes.buffer, "the message is a view, not a copy");
});
