/**
 * The client's unary call, made on grpc-js's channel call rather than through `Client.makeUnaryRequest`,
 * against a real grpc-js server, in its own process, that misbehaves: an answer that is no such message must fail the call
 * with INTERNAL and no answer with UNIMPLEMENTED, as grpc-js's client would; two answers hold it to its
 * deadline, as they do grpc-js's; and a status must come through with its code and details.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { CallTimeoutError, connect, EtcdError, LeaseNotFoundError } from "../../src/client/index.js";
import { launch } from "../../src/testkit/index.js";

const SERVER = new URL("./fixtures/misbehaving-lease.js", import.meta.url).pathname;

/** Runs `fn` against a misbehaving server process in `mode` (see the fixture), stopped afterwards by PID. */
async function withServer(mode: string, fn: (endpoint: string) => Promise<void>): Promise<void> {
  const child = await launch({
    name: `misbehaving-lease-${mode}`,
    command: process.execPath,
    args: [SERVER, mode],
    readyLine: (line) => /^listening (\d+)$/.exec(line)?.[1],
  });
  try {
    await fn(`127.0.0.1:${child.ready}`);
  } finally {
    await child.stop();
  }
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
    await withServer("garbage", async (endpoint) => {
      const err = await grantError(endpoint);
      assert.ok(err instanceof EtcdError, String(err));
      assert.equal(err.grpcCode, grpc.status.INTERNAL);
      assert.match(err.details, /^Response message parsing error: /);
    });
  });

  it("a status comes through with its code and details", async () => {
    await withServer("not-found", async (endpoint) => {
      const err = await grantError(endpoint);
      assert.ok(err instanceof LeaseNotFoundError, String(err));
      const cause = err.cause as { code: number; details: string; message: string };
      assert.equal(cause.code, grpc.status.NOT_FOUND);
      assert.equal(cause.details, "etcdserver: requested lease not found");
      assert.equal(cause.message, "5 NOT_FOUND: etcdserver: requested lease not found");
    });
  });

  it('no answer with status OK fails the call with UNIMPLEMENTED, "No message received"', async () => {
    await withServer("none", async (endpoint) => {
      const err = await grantError(endpoint);
      assert.ok(err instanceof EtcdError, String(err));
      assert.equal(err.grpcCode, grpc.status.UNIMPLEMENTED);
      assert.equal(err.details, "No message received");
    });
  });

  it("two answers hold the call to its deadline, as with grpc-js's client, and no longer", async () => {
    // grpc-js delivers the status only once every answer is read, and a unary call reads one.
    await withServer("two", async (endpoint) => {
      const started = Date.now();
      const err = await grantError(endpoint, 500);
      assert.ok(err instanceof CallTimeoutError, String(err));
      // Retried once on another attempt, then given up: twice the call timeout, with slack.
      assert.ok(Date.now() - started < 5_000, `failed after ${Date.now() - started} ms`);
    });
  });
});
