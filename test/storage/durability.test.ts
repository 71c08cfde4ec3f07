/**
 * Durability and lifecycle on real child processes: acknowledged writes survive SIGKILL; SIGTERM drains
 * an in-flight request, closes the database cleanly and exits 0; one server per data directory.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StorageClient, StorageError } from "../../src/storage/index.js";
import { LaunchError, startStorage } from "../../src/testkit/index.js";
import { http, startInProcess } from "./helpers.js";

test("acknowledged writes survive SIGKILL of the server", async (t) => {
  const storage = await startStorage();
  t.after(() => storage.stop());
  const client = new StorageClient({ url: storage.url, timeoutMs: 10_000 });
  t.after(() => client.close());

  const keys = 20;
  const acked = new Array<number>(keys).fill(0);
  let total = 0;
  let killed = false;
  const writer = async (i: number) => {
    for (let token = 1; token <= 5000 && !killed; token++) {
      try {
        await client.write(`k${i}`, `v${token}`, { token: BigInt(token) });
      } catch (err) {
        assert.ok(killed && err instanceof StorageError, `unexpected failure: ${String(err)}`);
        return;
      }
      acked[i] = token;
      total++;
    }
  };
  const writers = Array.from({ length: keys }, (_, i) => writer(i));
  const deadline = Date.now() + 10_000;
  while (total < 400 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  killed = true;
  await storage.kill(); // SIGKILL while writes are in flight
  await Promise.all(writers);
  assert.ok(total >= 100, `only ${total} writes were acknowledged before the kill`);

  await storage.restart();
  for (let i = 0; i < keys; i++) {
    const max = (await client.fence(`k${i}`)) ?? 0n;
    const value = (await client.read(`k${i}`))?.toString() ?? "";
    assert.ok(max >= BigInt(acked[i] as number), `k${i}: fence ${max} lost acknowledged token ${acked[i]}`);
    assert.equal(value, `v${max}`, `k${i}: the value matches the fence's last accepted write`);
  }
  const audit = await client.audit({ limit: 1000 });
  assert.ok(audit.length >= Math.min(total, 1000), "the audit log survived with the data");
});

test("SIGTERM drains an in-flight request, closes the database cleanly and exits 0", async (t) => {
  const storage = await startStorage();
  t.after(() => storage.stop());
  const file = join(storage.dataDir as string, "storage.sqlite");

  // A PUT whose body is only half sent when the SIGTERM arrives.
  const socket = connect(storage.port, "127.0.0.1");
  t.after(() => socket.destroy());
  const reply = new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("close", () => resolve(Buffer.concat(chunks).toString()));
    socket.on("error", () => undefined);
  });
  await new Promise<void>((r) => socket.once("connect", () => r()));
  socket.write(
    "PUT /v1/kv/drained HTTP/1.1\r\nHost: x\r\nFencing-Token: 7\r\nContent-Length: 10\r\n\r\nhello",
  );
  await new Promise((r) => setTimeout(r, 300));
  storage.child.signal("SIGTERM");
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(storage.child.running, "the server waits for the in-flight request");
  await assert.rejects(
    http(storage.port, "GET", "/healthz", { timeoutMs: 2000 }),
    "no new connections are accepted",
  );
  socket.write("world");
  const text = await reply;
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /\r\nConnection: close\r\n/i);
  assert.equal(await storage.child.exited, 0, "exit code 0");
  assert.ok(existsSync(file));
  assert.equal(existsSync(`${file}-wal`), false, "the WAL was checkpointed and removed: a clean close");

  await storage.restart();
  const client = new StorageClient({ url: storage.url });
  t.after(() => client.close());
  assert.deepEqual(await client.read("drained"), Buffer.from("helloworld"));
  assert.equal(await client.fence("drained"), 7n);
});

test("a second server on the same data directory refuses to start", async (t) => {
  const first = await startStorage();
  t.after(() => first.stop());
  const err = await startStorage({ dataDir: first.dataDir, timeoutMs: 15_000 }).then(
    async (second) => {
      await second.stop();
      assert.fail("a second server opened the same database");
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof LaunchError);
  assert.match(err.message, /cannot open the database: database is locked/);
  assert.equal((await http(first.port, "GET", "/healthz")).status, 200, "the first one is unaffected");
});

test("the data directory is created 0700, the database and its WAL 0600", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "fencelock-modes-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  // Two levels that do not exist yet: the server creates both.
  const dir = join(root, "a", "data");
  const { url } = await startInProcess(t, { dataDir: dir });
  const client = new StorageClient({ url });
  t.after(() => client.close());
  await client.write("k", "secret", { token: 1n });
  const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
  assert.equal(mode(join(root, "a")), "700");
  assert.equal(mode(dir), "700");
  assert.equal(mode(join(dir, "storage.sqlite")), "600");
  assert.equal(mode(join(dir, "storage.sqlite-wal")), "600");
});
