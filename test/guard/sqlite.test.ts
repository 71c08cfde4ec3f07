/**
 * The SQLite guard on real database files: the rule, the rollback of a stale holder's whole unit of work,
 * two connections racing on one fence, and bad input that changes nothing.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import {
  checkFence,
  ensureFenceTable,
  FenceTableMissingError,
  fenceMax,
  fenceTableSql,
  GuardArgumentError,
  resetFence,
  StaleTokenError,
  TransactionConflictError,
  withFence,
} from "../../src/guard/sqlite/index.js";
import { type TempDir, tempDir } from "../../src/testkit/index.js";

describe("SQLite guard", () => {
  let dir: TempDir;
  let file: string;
  const open: Database.Database[] = [];
  const connect = (options?: Database.Options) => {
    const db = new Database(file, options);
    db.pragma("journal_mode = WAL");
    open.push(db);
    return db;
  };

  before(async () => {
    dir = await tempDir("guard-sqlite");
    file = join(dir.path, "app.sqlite");
    const db = connect();
    ensureFenceTable(db);
    db.exec(
      "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0)",
    );
  });

  after(async () => {
    for (const db of open) db.close();
    await dir?.remove();
  });

  const count = (db: Database.Database) =>
    (db.prepare("SELECT n FROM counter WHERE id = 1").get() as { n: number }).n;
  const increment = (db: Database.Database) => db.prepare("UPDATE counter SET n = n + 1 WHERE id = 1").run();

  it("applies the rule: first, newer and equal tokens pass; a stale one rolls back the whole unit of work", () => {
    const db = connect();
    const before = count(db);
    assert.equal(
      withFence(db, { fence: "rule", token: 5n }, (tx) => {
        increment(tx);
        return count(tx);
      }),
      before + 1,
    );
    withFence(db, { fence: "rule", token: 5n }, increment);
    withFence(db, { fence: "rule", token: 9n }, increment);
    assert.equal(fenceMax(db, "rule"), 9n);
    let ran = false;
    const err = (() => {
      try {
        withFence(db, { fence: "rule", token: 8n }, (tx) => {
          ran = true;
          increment(tx);
        });
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof StaleTokenError, String(err));
    assert.deepEqual([err.code, err.token, err.maxToken, err.fence], ["STALE_FENCING_TOKEN", 8n, 9n, "rule"]);
    assert.equal(ran, false, "the function never runs for a stale token");
    assert.equal(count(db), before + 3);
    assert.equal(fenceMax(db, "rule"), 9n);
  });

  it("rolls back the fence too when the function throws", () => {
    const db = connect();
    const before = count(db);
    assert.throws(
      () =>
        withFence(db, { fence: "throws", token: 3n }, (tx) => {
          increment(tx);
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.equal(count(db), before);
    assert.equal(fenceMax(db, "throws"), null);
  });

  it("keeps int64 tokens exact past 2^53", () => {
    const db = connect();
    const big = 4703569812595502727n;
    withFence(db, { fence: "big", token: big }, () => {});
    assert.equal(fenceMax(db, "big"), big);
    assert.throws(() => withFence(db, { fence: "big", token: big - 1n }, () => {}), StaleTokenError);
  });

  it("checkFence works inside the caller's own transaction and refuses to run outside one", () => {
    const db = connect();
    const before = count(db);
    const unit = db.transaction((token: bigint) => {
      checkFence(db, { fence: "own", token });
      increment(db);
    });
    unit.immediate(4n);
    assert.throws(() => unit.immediate(3n), StaleTokenError);
    assert.equal(count(db), before + 1);
    assert.throws(() => checkFence(db, { fence: "own", token: 10n }), GuardArgumentError);
    assert.equal(fenceMax(db, "own"), 4n);
  });

  it("a second connection waiting for the write lock sees the newer max and is refused", () => {
    const a = connect();
    const b = connect({ timeout: 50 });
    const before = count(a);
    // a holds the write lock with token 7 while b (token 6) tries: b waits, then gives up as a conflict.
    withFence(a, { fence: "race", token: 7n }, (tx) => {
      increment(tx);
      assert.throws(() => withFence(b, { fence: "race", token: 6n }, increment), TransactionConflictError);
    });
    assert.throws(() => withFence(b, { fence: "race", token: 6n }, increment), StaleTokenError);
    withFence(b, { fence: "race", token: 8n }, increment);
    assert.equal(count(a), before + 2);
  });

  it("refuses bad input with GuardArgumentError and changes nothing", () => {
    const db = connect();
    const before = count(db);
    const bad: [string, () => unknown][] = [
      ["number token", () => withFence(db, { fence: "bad", token: 5 as unknown as bigint }, increment)],
      ["negative token", () => withFence(db, { fence: "bad", token: -1n }, increment)],
      ["zero token", () => withFence(db, { fence: "bad", token: 0n }, increment)],
      ["token above int64", () => withFence(db, { fence: "bad", token: 2n ** 63n }, increment)],
      ["empty fence", () => withFence(db, { fence: "", token: 1n }, increment)],
      ["oversize fence", () => withFence(db, { fence: "f".repeat(1025), token: 1n }, increment)],
      ["lone surrogate", () => withFence(db, { fence: "\ud800", token: 1n }, increment)],
      [
        "bad table",
        () => withFence(db, { fence: "bad", token: 1n, table: "x; DROP TABLE counter" }, increment),
      ],
      ["async function", () => withFence(db, { fence: "bad", token: 1n }, async () => increment(db))],
      [
        "nested",
        () => db.transaction(() => withFence(db, { fence: "bad", token: 1n }, increment)).immediate(),
      ],
    ];
    for (const [what, call] of bad) assert.throws(call, GuardArgumentError, what);
    assert.equal(count(db), before);
    assert.equal(fenceMax(db, "bad"), null);
    const closed = new Database(file);
    closed.close();
    assert.throws(() => withFence(closed, { fence: "bad", token: 1n }, () => {}), GuardArgumentError);
  });

  it("a fence table that does not exist: FenceTableMissingError, nothing written", () => {
    const db = connect();
    const before = count(db);
    assert.throws(
      () => withFence(db, { fence: "f", token: 1n, table: "missing_fences" }, increment),
      FenceTableMissingError,
    );
    assert.throws(() => fenceMax(db, "f", { table: "missing_fences" }), FenceTableMissingError);
    assert.equal(count(db), before);
  });

  it("resetFence forgets a fence and says what it held", () => {
    const db = connect();
    withFence(db, { fence: "reset", token: 6748436257929267596n }, () => {});
    assert.equal(resetFence(db, "reset"), 6748436257929267596n);
    assert.equal(resetFence(db, "reset"), null);
    withFence(db, { fence: "reset", token: 6n }, () => {});
    assert.equal(fenceMax(db, "reset"), 6n);
  });

  it("ships the table as a plain .sql file equal to what ensureFenceTable runs", () => {
    const shipped = readFileSync(new URL("../../../sql/sqlite-fences.sql", import.meta.url), "utf8");
    assert.equal(shipped.replace(/^--.*\n/gm, ""), fenceTableSql());
  });
});
