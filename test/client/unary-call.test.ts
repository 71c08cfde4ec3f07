/**
 * The client's unary call, made on grpc-js's channel call rather than through `Client.makeUnaryRequest`,
 * against a real grpc-js server that misbehaves: an answer that is no such message must fail the call
 * with INTERNAL and no answer with UNIMPLEMENTED, as grpc-js's client would; two answers hold it to its
 * deadline, as they do grpc-js's; and a status must come through with its code and details.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { CallTimeoutError, connect, EtcdError, LeaseNotFoundError } from "../../src/client/index.js";
import { etcdServices } from "../../src/proto/index.js";

/**
 * A server of Lease.LeaseGrant only, its definition changed by `change` (another answer encoder, or
 * answers streamed, so that a unary client can be sent none or two).
 */
async function leaseServer(
  handler: grpc.UntypedHandleCall,
  change: Partial<grpc.MethodDefinition<unknown, unknown>> = {},
) {
  const definition = etcdServices().Lease.service.LeaseGrant as grpc.MethodDefinition<unknown, unknown>;
  const server = new grpc.Server();
  server.addService({ LeaseGrant: { ...definition, ...change } }, { LeaseGrant: handler });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { endpoint: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

async function grantError(endpoint: string, callTimeoutMs = 5_000): Promise<unknown> {
  const client = connect({ endpoints: [endpoint], callTimeoutMs });
  try {
    await client.session({ ttl: 5 });
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await client.close();
  }
}

describe("the client's unary call", () => {
  it("an answer that is no LeaseGrantResponse fails the call with INTERNAL, saying it could not be read", async () => {
    // Field 1 with wire type 7, which does not exist: protobufjs refuses it.
    const unary: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) => callback(null, {});
    const server = await leaseServer(unary, { responseSerialize: () => Buffer.from([0x0f, 0xff, 0xff]) });
    try {
      const err = await grantError(server.endpoint);
      assert.ok(err instanceof EtcdError, String(err));
      assert.equal(err.grpcCode, grpc.status.INTERNAL);
      assert.match(err.details, /^Response message parsing error: /);
    } finally {
      server.stop();
    }
  });

  it("a status comes through with its code and details", async () => {
    const unary: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
      callback({ code: grpc.status.NOT_FOUND, details: "etcdserver: requested lease not found" });
    const server = await leaseServer(unary);
    try {
      const err = await grantError(server.endpoint);
      assert.ok(err instanceof LeaseNotFoundError, String(err));
      const cause = err.cause as { code: number; details: string; message: string };
      assert.equal(cause.code, grpc.status.NOT_FOUND);
      assert.equal(cause.details, "etcdserver: requested lease not found");
      assert.equal(cause.message, "5 NOT_FOUND: etcdserver: requested lease not found");
    } finally {
      server.stop();
    }
  });

  it('no answer with status OK fails the call with UNIMPLEMENTED, "No message received"', async () => {
    const none: grpc.handleServerStreamingCall<unknown, unknown> = (call) => call.end();
    const server = await leaseServer(none, { responseStream: true });
    try {
      const err = await grantError(server.endpoint);
      assert.ok(err instanceof EtcdError, String(err));
      assert.equal(err.grpcCode, grpc.status.UNIMPLEMENTED);
      assert.equal(err.details, "No message received");
    } finally {
      server.stop();
    }
  });

  it("two answers hold the call to its deadline, as with grpc-js's client, and no longer", async () => {
    // grpc-js delivers the status only once every answer is read, and a unary call reads one.
    const answer = { header: {}, ID: "1", TTL: "5", error: "" };
    const two: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
      call.write(answer);
      call.write(answer);
      call.end();
    };
    const server = await leaseServer(two, { responseStream: true });
    try {
      const started = Date.now();
      const err = await grantError(server.endpoint, 500);
      assert.ok(err instanceof CallTimeoutError, String(err));
      // Retried once on another attempt, then given up: twice the call timeout, with slack.
      assert.ok(Date.now() - started < 5_000, `failed after ${Date.now() - started} ms`);
    } finally {
      server.stop();
    }
  });
});
