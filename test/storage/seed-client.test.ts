/**
 * `SeedStorageClient`: the seed's `POST /` from the client side, against our in-process storage (int64
 * versions exact, a stale version is a `StaleTokenError`) and against servers that do not speak it.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  SeedStorageClient,
  StaleTokenError,
  StorageRequestError,
  StorageUnavailableError,
} from "../../src/storage/index.js";
import { startInProcess } from "./helpers.js";

test("versions round-trip exactly past 2^53; a lower one is a StaleTokenError; other refusals keep their code", async (t) => {
  const { url } = await startInProcess(t);
  const client = new SeedStorageClient({ url });
  try {
    assert.deepEqual(await client.write("k", "v", { version: 9223372036854775806n }), {
      version: 9223372036854775806n,
    });
    const stale = await client.write("k", "w", { version: 9223372036854775805n }).catch((e) => e);
    assert.ok(stale instanceof StaleTokenError);
    assert.deepEqual(
      [stale.token, stale.maxToken, stale.fence],
      [9223372036854775805n, 9223372036854775806n, "k"],
    );
    const none = await client.write("k", "w", { version: 0n }).catch((e) => e);
    assert.ok(none instanceof StorageRequestError && none.code === "TOKEN_REQUIRED" && none.status === 400);
  } finally {
    client.close();
  }
});

test("an answer that is not the seed protocol is StorageUnavailableError with its status", async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const client = new SeedStorageClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  try {
    const err = await client.write("k", "v", { version: 1n }).catch((e) => e);
    assert.ok(err instanceof StorageUnavailableError);
    assert.equal(err.status, 404);
    assert.match(err.message, /answer to POST \/ \(404\) is not the seed protocol: not JSON/);
  } finally {
    client.close();
  }
});
