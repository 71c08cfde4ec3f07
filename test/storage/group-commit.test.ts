/**
 * Group commit on real SQLite files: the decisions of one turn share a transaction yet each is made in
 * arrival order against what the ones before it left; a decision SQLite refuses fails alone; a burst is
 * split into bounded transactions. Then the same over HTTP on a real server process.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { Batcher, MAX_BATCH, MAX_BATCH_BYTES } from "../../src/storage/batch.js";
import { StorageClient } from "../../src/storage/index.js";
import { SqliteStore } from "../../src/storage/sqlite-store.js";
import type { Decision, Outcome } from "../../src/storage/store.js";
import { startStorage } from "../../src/testkit/index.js";

/** A SQLite store in a fresh directory, closed and removed after the test. */
function openStore(t: { after(fn: () => void): void }, prepare?: (db: Database.Database) => void) {
  const dir = mkdtempSync(join(tmpdir(), "fencelock-batch-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  if (prepare) {
    const store = new SqliteStore({ dataDir: dir });
    store.close();
    const db = new Database(join(dir, "storage.sqlite"));
    prepare(db);
    db.close();
  }
  const store = new SqliteStore({ dataDir: dir });
  t.after(() => store.close());
  return store;
}

const write = (key: string, token: bigint, value: string, fence = key): Decision => ({
  op: "write",
  key,
  fence,
  token,
  value: Buffer.from(value),
});

/** What an outcome says, without its sequence number. */
function summary(o: Outcome): string {
  switch (o.kind) {
    case "written":
      return `written max ${o.maxToken}`;
    case "read":
      return `read ${o.value?.toString() ?? "null"} max ${o.maxToken}`;
    case "stale":
      return `stale ${o.token} < ${o.maxToken}`;
    case "token-required":
      return "token-required";
  }
}

test("one turn's decisions commit together, each decided in arrival order against the ones before it", async (t) => {
  const decisions: Decision[] = [
    write("a", 5n, "a5"),
    write("a", 3n, "a3"), // stale against the write just before it, in the same batch
    { op: "read", key: "a", fence: "a", token: 5n }, // sees a5, not yet committed when it was decided
    write("a", 7n, "a7"),
    write("a", 6n, "a6"), // stale again
    { op: "read", key: "a", fence: "a", token: 4n },
    write("b", 2n, "b2", "F"),
    write("c", 1n, "c1", "F"), // shared fence F: older than b's token
    { op: "read", key: "b", fence: "F", token: 9n },
    write("b", 8n, "b8", "F"), // the fenced read just moved F to 9
    write("a", 7n, "a7 again"),
    { op: "read", key: "a", fence: "a", token: 7n },
  ];
  // The serial answer: one transaction per decision, on a store of its own.
  const serial = openStore(t);
  const expected = decisions.map((d) => serial.transaction(() => serial.decide(d)));

  const store = openStore(t);
  let transactions = 0;
  const transaction = store.transaction.bind(store);
  store.transaction = (fn) => {
    transactions++;
    return transaction(fn);
  };
  const batcher = new Batcher(store);
  const outcomes = await Promise.all(decisions.map((d) => batcher.submit(d)));
  assert.equal(transactions, 1, "one turn, one transaction");
  assert.deepEqual(outcomes.map(summary), expected.map(summary));
  assert.deepEqual(
    outcomes.map((o) => o.seq),
    decisions.map((_, i) => i + 1),
    "audit sequence numbers in arrival order",
  );
  const audit = store.auditAfter(0, 100);
  assert.deepEqual(
    audit.map((r) => [r.seq, r.op, r.key, r.token, r.accepted, r.reason]),
    serial.auditAfter(0, 100).map((r) => [r.seq, r.op, r.key, r.token, r.accepted, r.reason]),
    "the audit log is the serial one, row for row",
  );
  assert.deepEqual(store.read("a", "a"), { value: Buffer.from("a7 again"), maxToken: 7n });
  assert.deepEqual(store.read("c", "F"), { value: null, maxToken: 9n }, "c's stale write left nothing");
  batcher.close();
});

test("a decision SQLite refuses fails alone: the rest of its batch is decided again and committed", async (t) => {
  // A real SQLite error for one key only, raised inside the batch's statement of names.
  const store = openStore(t, (db) =>
    db.exec(
      "CREATE TRIGGER poison BEFORE INSERT ON names WHEN NEW.name = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned key'); END",
    ),
  );
  const batcher = new Batcher(store);
  const results = await Promise.allSettled([
    batcher.submit(write("k", 1n, "first")),
    batcher.submit(write("poison", 1n, "bad")),
    batcher.submit(write("k", 1n, "second")),
    batcher.submit(write("k", 2n, "third")),
    batcher.submit(write("other", 4n, "o")),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ["fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled"],
  );
  const failed = results[1] as PromiseRejectedResult;
  assert.match(String(failed.reason), /poisoned key/);
  assert.deepEqual(store.read("k", "k"), { value: Buffer.from("third"), maxToken: 2n });
  assert.deepEqual(store.read("other", "other").value, Buffer.from("o"));
  assert.deepEqual(store.read("poison", "poison"), { value: null, maxToken: null }, "nothing of it was kept");
  assert.deepEqual(
    store.auditAfter(0, 100).map((r) => [r.seq, r.key, r.token, r.accepted]),
    [
      [1, "k", 1n, true],
      [2, "k", 1n, true],
      [3, "k", 2n, true],
      [4, "other", 4n, true],
    ],
    "every committed decision is audited, in arrival order, and the refused one is not",
  );
  batcher.close();
});

test("a burst is committed in bounded transactions, one a turn, in order", async (t) => {
  const store = openStore(t);
  const sizes: number[] = [];
  const transaction = store.transaction.bind(store);
  let current = 0;
  store.transaction = (fn) => {
    current = 0;
    const result = transaction(fn);
    sizes.push(current);
    return result;
  };
  const decide = store.decide.bind(store);
  store.decide = (d) => {
    current++;
    return decide(d);
  };
  const batcher = new Batcher(store);
  const count = MAX_BATCH * 2 + 10;
  const small = Array.from({ length: count }, (_, i) =>
    batcher.submit(write(`k${i % 7}`, BigInt(i + 1), "v")),
  );
  // Turns in between: an immediate queued after the burst runs before its second transaction.
  let between = -1;
  setImmediate(() => {
    between = sizes.length;
  });
  const outcomes = await Promise.all(small);
  assert.deepEqual(sizes, [MAX_BATCH, MAX_BATCH, 10]);
  assert.equal(between, 1, "the event loop ran between the transactions");
  assert.deepEqual(
    outcomes.map((o) => o.seq),
    outcomes.map((_, i) => i + 1),
  );

  sizes.length = 0;
  const big = Buffer.alloc(MAX_BATCH_BYTES / 2 + 1, 1);
  const three = [1n, 2n, 3n].map((token) =>
    batcher.submit({ op: "write", key: "big", fence: "big", token, value: big }),
  );
  await Promise.all(three);
  assert.deepEqual(sizes, [1, 1, 1], "each value over half the byte bound goes alone");
  batcher.close();
});

test("the background syncs of the WAL leave no descriptor open once the store is closed", async (t) => {
  const store = openStore(t);
  const walDescriptors = () =>
    readdirSync("/proc/self/fd").filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${store.file}-wal`);
      } catch {
        return false; // the directory's own descriptor, gone by now
      }
    }).length;
  for (let i = 1; i <= 100; i++) store.transaction(() => store.decide(write("k", BigInt(i), "v")));
  assert.equal(walDescriptors(), 2, "SQLite's and the background sync's");
  store.close();
  const deadline = Date.now() + 5000;
  while (walDescriptors() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(walDescriptors(), 0);
});

/** A PUT over a keep-alive agent; resolves with the status and the parsed body. */
function put(
  agent: Agent,
  port: number,
  key: string,
  token: bigint,
  value: string,
): Promise<{ status: number; body: Record<string, string | number | null> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "PUT",
        path: `/v1/kv/${key}`,
        agent,
        headers: { "Fencing-Token": token.toString(), "Content-Length": Buffer.byteLength(value) },
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("no reply in 10 s")));
    req.on("error", reject);
    req.end(value);
  });
}

test("concurrent stale and fresh writes over HTTP: each answer is its audit row, the log replays the rule, and all survive SIGKILL", async (t) => {
  const storage = await startStorage();
  t.after(() => storage.stop());
  const agent = new Agent({ keepAlive: true, maxSockets: 10 });
  t.after(() => agent.destroy());

  // 10 connections write one fence at once; tokens jump about, so many writes are stale against a
  // write of the same batch.
  const replies = new Map<string, { status: number; body: Record<string, string | number | null> }>();
  for (let round = 0; round < 30; round++) {
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const token = BigInt(round * 10 + ((i * 7) % 10) * (i % 2 === 0 ? 1 : -1) + 100);
        const id = `w${round}-${i}`;
        replies.set(id, await put(agent, storage.port, "hot", token, id));
      }),
    );
  }
  // The last round's replies are all in: SIGKILL now, before any graceful close or checkpoint.
  await storage.kill();
  await storage.restart();
  const client = new StorageClient({ url: storage.url, timeoutMs: 10_000 });
  t.after(() => client.close());
  const audit = await client.audit({ limit: 1000 });
  assert.equal(audit.length, replies.size, "one audit row per request, none lost in the crash");
  let max: bigint | null = null;
  let lastAccepted = "";
  for (const row of audit) {
    const reply = replies.get(row.value ?? "");
    assert.ok(reply, `audit row ${row.seq} answers a request`);
    assert.equal(row.previousMax, max, `row ${row.seq} was decided against the rows before it`);
    const fresh: boolean = max === null || (row.token as bigint) >= max;
    assert.equal(row.accepted, fresh, `row ${row.seq}: token ${row.token} against max ${max}`);
    if (fresh) {
      assert.equal(reply.status, 200);
      assert.equal(reply.body.seq, row.seq, "the reply names its audit row");
      max = row.token;
      lastAccepted = row.value as string;
    } else {
      assert.equal(reply.status, 409);
      assert.equal(reply.body.maxToken, String(max));
    }
  }
  assert.ok(
    audit.some((r) => !r.accepted),
    "some writes were stale",
  );
  assert.equal(await client.fence("hot"), max, "the fence survived the crash");
  assert.equal((await client.read("hot"))?.toString(), lastAccepted, "the last accepted value survived");
});
