/**
 * The `etcd3` npm package, an independent etcd v3 client, against lockd: put/get, a lease kept alive
 * and then left to expire, its lock, and watch.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Etcd3 } from "etcd3";
import { type LockdInstance, startLockd } from "../../src/testkit/index.js";

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("the etcd3 npm package against lockd", { timeout: 60_000 }, () => {
  let lockd: LockdInstance;
  let client: Etcd3;

  before(async () => {
    lockd = await startLockd();
    client = new Etcd3({ hosts: `http://${lockd.endpoint}` });
  });
  after(async () => {
    client?.close();
    await lockd?.stop();
  });

  test("put, get, getAll with a prefix, delete", async () => {
    await client.put("/e3/a").value("1");
    await client.put("/e3/b").value("2");
    assert.equal(await client.get("/e3/a").string(), "1");
    assert.deepEqual(await client.getAll().prefix("/e3/").strings(), { "/e3/a": "1", "/e3/b": "2" });
    await client.delete().prefix("/e3/");
    assert.equal(await client.get("/e3/a").string(), null);
  });

  test("a lease kept alive holds its key; released, it expires and takes the key along", async () => {
    const lease = client.lease(2);
    let keepAlives = 0;
    lease.on("keepaliveSucceeded", () => keepAlives++);
    await lease.put("/e3/leased").value("v");
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(keepAlives >= 2, `keep-alives: ${keepAlives}`);
    assert.equal(await client.get("/e3/leased").string(), "v");
    lease.release();
    await until("the key to expire", async () => (await client.get("/e3/leased").string()) === null);
  });

  test("its lock excludes a second holder until released", async () => {
    const first = await client.lock("/e3/lock").ttl(10).acquire();
    await assert.rejects(client.lock("/e3/lock").ttl(10).acquire());
    await first.release();
    const second = await client.lock("/e3/lock").ttl(10).acquire();
    await second.release();
  });

  test("watch a prefix: put and delete events", async () => {
    const watcher = await client.watch().prefix("/e3/w/").create();
    const seen: string[] = [];
    watcher.on("put", (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
    watcher.on("delete", (kv) => seen.push(`delete ${kv.key.toString()}`));
    try {
      await client.put("/e3/w/x").value("1");
      await client.put("/e3/other").value("1");
      await client.delete().key("/e3/w/x");
      await until("two events", async () => seen.length >= 2);
      assert.deepEqual(seen, ["put /e3/w/x=1", "delete /e3/w/x"]);
    } finally {
      await watcher.cancel();
    }
  });
});
