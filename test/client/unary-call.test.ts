/**
 * The client's unary call, made on grpc-js's channel call rather than through `Client.makeUnaryRequest`,
 * against a real grpc-js server that misbehaves: an answer that is no such message must fail the call
 * with INTERNAL, as grpc-js's client would, and a status must come through with its code and details.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { connect, EtcdError, LeaseNotFoundError } from "../../src/client/index.js";
import { etcdServices } from "../../src/proto/index.js";

type Handler = grpc.handleUnaryCall<unknown, unknown>;

/** A server of Lease.LeaseGrant only, with `serialize` for its answers. */
async function leaseServer(handler: Handler, serialize?: (answer: unknown) => Buffer) {
  const definition = etcdServices().Lease.service.LeaseGrant as grpc.MethodDefinition<unknown, unknown>;
  const server = new grpc.Server();
  const method = serialize ? { ...definition, responseSerialize: serialize } : definition;
  server.addService({ LeaseGrant: method }, { LeaseGrant: handler });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { endpoint: `127.0.0.1:${port}`, stop: () => server.forceShutdown() };
}

async function grantError(endpoint: string): Promise<unknown> {
  const client = connect({ endpoints: [endpoint], callTimeoutMs: 5_000 });
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
    const server = await leaseServer(
      (_call, callback) => callback(null, {}),
      () => Buffer.from([0x0f, 0xff, 0xff]),
    );
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
    const server = await leaseServer((_call, callback) =>
      callback({ code: grpc.status.NOT_FOUND, details: "etcdserver: requested lease not found" }),
    );
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
});
