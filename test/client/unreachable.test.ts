/**
 * A client pointed where no lock service runs: nothing listening, or an HTTP server (the storage's port).
 * It must say so at once, naming the endpoints and what to start, not time out after the retry budget.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { connect, EtcdUnavailableError } from "../../src/client/index.js";
import { freePort } from "../../src/testkit/index.js";

async function grantError(endpoints: string[]): Promise<{ err: unknown; ms: number }> {
  // A call timeout far above the bound below: only a fast failure can pass.
  const client = connect({ endpoints, callTimeoutMs: 20_000 });
  const started = Date.now();
  try {
    const session = await client.session({ ttl: 5 });
    await session.close();
    return { err: undefined, ms: Date.now() - started };
  } catch (err) {
    return { err, ms: Date.now() - started };
  } finally {
    await client.close();
  }
}

describe("an unreachable lock service", () => {
  it("refused connections on every endpoint: EtcdUnavailableError naming them, with what to start", async () => {
    const endpoints = [`127.0.0.1:${await freePort()}`, `127.0.0.1:${await freePort()}`];
    const { err, ms } = await grantError(endpoints);
    assert.ok(err instanceof EtcdUnavailableError, String(err));
    assert.deepEqual([...err.tried].sort(), [...endpoints].sort());
    for (const e of endpoints) assert.ok(err.message.includes(`${e} (connection refused)`), err.message);
    assert.match(err.message, /fencelock lockd/);
    assert.doesNotMatch(err.message, /Resolution note/);
    assert.ok(ms < 10_000, `failed after ${ms} ms; the retry budget is 40 s`);
  });

  it("an HTTP server instead of gRPC: EtcdUnavailableError that says it is not a gRPC server", async () => {
    const server = createServer((_req, res) => res.end("not grpc"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { err } = await grantError([endpoint]);
      assert.ok(err instanceof EtcdUnavailableError, String(err));
      assert.match(err.message, /not a gRPC server/);
    } finally {
      server.close();
    }
  });
});
