/**
 * The storage's schema across versions, on real SQLite files and a real server process: a database
 * written by schema version 1 (values and fence maxima in two tables, every audit reason stored) opens
 * with its data, fences and audit log intact; a database from a newer schema is refused.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { StaleTokenError, StorageClient } from "../../src/storage/index.js";
import { LaunchError, startStorage } from "../../src/testkit/index.js";

/** Schema version 1, as fencelock wrote it before version 2. */
const V1 = `
CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE fences (name TEXT PRIMARY KEY, max_token INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, op TEXT NOT NULL, key TEXT NOT NULL,
  fence TEXT NOT NULL, token INTEGER, previous_max INTEGER, accepted INTEGER NOT NULL,
  reason TEXT NOT NULL, value BLOB
);`;

function dataDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "fencelock-schema-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("a version 1 database keeps its values, fences and audit log", async (t) => {
  const dir = dataDir(t);
  const file = join(dir, "storage.sqlite");
  const old = new Database(file);
  old.pragma("journal_mode = WAL");
  old.exec(V1);
  // A key with its own fence, a key fenced by another name, a fence with no key of that name.
  old.prepare("INSERT INTO kv VALUES (?, ?)").run("k", Buffer.from("v7"));
  old.prepare("INSERT INTO kv VALUES (?, ?)").run("data", Buffer.from("under lock"));
  old.prepare("INSERT INTO fences VALUES (?, ?)").run("k", 7);
  old.prepare("INSERT INTO fences VALUES (?, ?)").run("the-lock", 40);
  old
    .prepare("INSERT INTO audit VALUES (1, 1000, 'write', 'k', 'k', 7, NULL, 1, ?, ?)")
    .run("accepted: first token 7", Buffer.from("v7"));
  old.close();

  const storage = await startStorage({ dataDir: dir });
  t.after(() => storage.stop());
  const client = new StorageClient({ url: storage.url });
  t.after(() => client.close());

  assert.equal((await client.read("k"))?.toString(), "v7");
  assert.equal((await client.read("data"))?.toString(), "under lock");
  assert.equal(await client.read("the-lock"), null, "a fence is not a value");
  assert.equal(await client.fence("k"), 7n);
  assert.equal(await client.fence("the-lock"), 40n);
  assert.equal(await client.fence("data"), null, "a value is not a fence");
  await assert.rejects(client.write("k", "old", { token: 6n }), StaleTokenError, "the max of k still holds");
  await assert.rejects(
    client.write("data", "old", { token: 39n, fence: "the-lock" }),
    StaleTokenError,
    "the max of the-lock still holds",
  );
  await client.write("data", "new", { token: 41n, fence: "the-lock" });
  assert.equal((await client.read("data"))?.toString(), "new");
  assert.equal(await client.fence("the-lock"), 41n);

  const audit = await client.audit({ limit: 10 });
  assert.deepEqual(
    audit.map((e) => [e.seq, e.key, e.fence, e.accepted, e.reason]),
    [
      [1, "k", "k", true, "accepted: first token 7"],
      [2, "k", "k", false, "rejected: stale token 6 < max 7"],
      [3, "data", "the-lock", false, "rejected: stale token 39 < max 40"],
      [4, "data", "the-lock", true, "accepted: token 41 > max 40"],
    ],
    "the old entry as stored; the new ones worded from their columns",
  );

  await storage.stop();
  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma("user_version", { simple: true }), 2);
  const tables = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    .pluck()
    .all();
  assert.deepEqual(tables, ["audit", "names"]);
});

test("a database from a newer schema is refused, and left as it was", async (t) => {
  const dir = dataDir(t);
  const file = join(dir, "storage.sqlite");
  const newer = new Database(file);
  newer.pragma("user_version = 3");
  newer.exec("CREATE TABLE future (x)");
  newer.close();
  const err = await startStorage({ dataDir: dir, timeoutMs: 15_000 }).then(
    async (s) => {
      await s.stop();
      assert.fail("the server opened a database of schema version 3");
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof LaunchError);
  assert.match(err.message, /schema version 3; this fencelock reads version 2/);
  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma("user_version", { simple: true }), 3);
  assert.deepEqual(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all(), [
    "future",
  ]);
});
