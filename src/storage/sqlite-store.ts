/**
 * The durable store: SQLite (better-sqlite3) in WAL mode, one database for the data, the fences and the
 * audit log, so a decision and its effects commit together.
 *
 * A transaction decides in memory and writes once: the rule reads fence maxima and values through the
 * transaction's own pending changes, and just before COMMIT those changes go to SQLite in a few
 * multi-row statements (one row per name with its last value and last max; every audit row, numbered
 * here). A batch of decisions then costs a handful of statement runs instead of three per decision. If a
 * statement fails, the transaction rolls back whole and nothing of it is kept.
 *
 * With `synchronous` normal a commit only writes the WAL; SQLite syncs it at each checkpoint, which runs
 * inside a COMMIT and so holds the event loop. The store makes those rare (`CHECKPOINT_FRAMES`) and
 * cheap: every `PRESYNC_COMMITS` commits it syncs the WAL in the background, so the checkpoint's own
 * sync finds little left to write. Only ever extra syncs; SQLite still makes every sync it would.
 */
import { closeSync, fdatasync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  AUDIT_VALUE_BYTES,
  type AuditRow,
  type Decision,
  type FenceReset,
  RuleStore,
  reasonOf,
  type StoreOptions,
  type Verdict,
} from "./store.js";

/**
 * The schema (version 2). A key's value and a fence's max live in one table, keyed by name: a seed write
 * or a PUT without a `Fence` header fences its key by the key's own name, so its value and its max share
 * a row and a commit writes one page for both instead of one each.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS names (
  name TEXT PRIMARY KEY,
  value BLOB,
  max_token INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  op TEXT NOT NULL,
  key TEXT NOT NULL,
  fence TEXT NOT NULL,
  token INTEGER,
  previous_max INTEGER,
  accepted INTEGER NOT NULL,
  reason TEXT NOT NULL,
  value BLOB
);`;

/** `PRAGMA user_version` of the schema above. Version 1 (0 in the file) kept values and maxima apart. */
const SCHEMA_VERSION = 2;

/** Moves a version 1 database's `kv` and `fences` tables into `names`, in the open transaction. */
const MIGRATE_FROM_V1 = {
  kv: "INSERT INTO names (name, value) SELECT key, value FROM kv; DROP TABLE kv;",
  fences:
    "INSERT INTO names (name, max_token) SELECT name, max_token FROM fences WHERE true " +
    "ON CONFLICT (name) DO UPDATE SET max_token = excluded.max_token; DROP TABLE fences;",
};

/** Most audit entries one batch drops (`auditKeep`). */
const MAX_AUDIT_DROP = 1024;

/** Most fence maxima kept in memory; past it the cache starts over. */
const FENCE_CACHE_MAX = 100_000;

/**
 * WAL frames (pages) between SQLite's automatic checkpoints. A checkpoint holds the event loop for two
 * syncs and a page copy whatever its size, so fewer, larger ones cost less (SQLite's default is 1000;
 * 4000 frames is a 16 MB WAL).
 */
const CHECKPOINT_FRAMES = 4000;

/** Commits between background syncs of the WAL (one at a time; `synchronous` normal only). */
const PRESYNC_COMMITS = 32;

/** Rows one multi-row statement writes at most (an audit row binds 10 values, far below SQLite's limit). */
const ROWS_PER_STATEMENT = 32;

interface RawAudit {
  seq: bigint;
  time_ms: bigint;
  op: "read" | "write" | "reset";
  key: string;
  fence: string;
  token: bigint | null;
  previous_max: bigint | null;
  accepted: bigint;
  reason: string;
  value: Buffer | null;
}

/** What the open transaction changed, not yet in SQLite. Empty outside a transaction. */
interface Pending {
  /** The last value written to each key. */
  kv: Map<string, Buffer>;
  /** The last max of each fence; `null`: the fence was reset. */
  fences: Map<string, bigint | null>;
  /** The audit rows, flat: `AUDIT_WIDTH` values a row. */
  audit: unknown[];
}

/** Columns of an audit row, the sequence number given here (the newest + 1, as SQLite's rowid would). */
const AUDIT_INSERT =
  "INSERT INTO audit (seq, time_ms, op, key, fence, token, previous_max, accepted, reason, value) VALUES ";
const AUDIT_WIDTH = 10;

/** The store on SQLite. `close` is final. */
export class SqliteStore extends RuleStore {
  readonly file: string;
  private readonly db: Database.Database;
  // Fence maxima read or written so far. The database is opened in exclusive mode, so nobody else
  // changes them; a rolled-back transaction clears the cache.
  private readonly fences = new Map<string, bigint | null>();
  private readonly stmt: ReturnType<SqliteStore["prepare"]>;
  private readonly pending: Pending = { kv: new Map(), fences: new Map(), audit: [] };
  /** Multi-row statements by table and row count, prepared on first use. */
  private readonly multi = new Map<string, Database.Statement>();
  private readonly auditKeep: number | undefined;
  /** The oldest and newest audit sequence numbers kept (0 when the log is empty). */
  private oldestSeq: number;
  private newestSeq: number;
  /** The WAL file, opened for the background syncs (`syncWalInBackground`). */
  private walFd: number | undefined;
  private commitsSinceSync = 0;
  private syncing = false;
  /** Whether to sync the WAL in the background: with `synchronous` full every commit syncs it already. */
  private readonly presync: boolean;

  constructor(options: StoreOptions = {}) {
    super(options.allowUnfenced ?? false);
    const dir = options.dataDir ?? ".fencelock/storage";
    // Only the server's user may read the data, the fences and the audit log: the directory is created
    // 0700 and the database 0600 before SQLite opens it (SQLite gives its WAL the database's mode).
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = join(dir, "storage.sqlite");
    closeSync(openSync(this.file, "a", 0o600));
    // A second server on the same directory waits this long for the lock, then fails to start.
    this.db = new Database(this.file, { timeout: 2000 });
    // One server per database: the exclusive lock makes a second server on the same directory fail at
    // start, and spares the per-transaction file-lock system calls of shared mode.
    this.db.pragma("locking_mode = EXCLUSIVE");
    this.db.pragma("journal_mode = WAL");
    this.db.pragma(`synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
    this.db.pragma(`wal_autocheckpoint = ${CHECKPOINT_FRAMES}`);
    this.presync = options.synchronous !== "full";
    this.migrate();
    this.stmt = this.prepare();
    this.auditKeep = options.auditKeep;
    const bounds = this.stmt.auditBounds.get() as { oldest: bigint | null; newest: bigint | null };
    this.oldestSeq = Number(bounds.oldest ?? 0n);
    this.newestSeq = Number(bounds.newest ?? 0n);
  }

  /**
   * Creates the schema, or brings a version 1 database to version 2 in one transaction (a crash midway
   * leaves version 1 whole). Throws on a database from a newer fencelock.
   */
  private migrate(): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `${this.file} has schema version ${version}; this fencelock reads version ${SCHEMA_VERSION} (upgrade fencelock)`,
      );
    }
    const has = this.db
      .prepare<[string], number>("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?")
      .pluck();
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      if (has.get("kv") === 1) this.db.exec(MIGRATE_FROM_V1.kv);
      if (has.get("fences") === 1) this.db.exec(MIGRATE_FROM_V1.fences);
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  private prepare() {
    const db = this.db;
    const getFence = db.prepare<[string], bigint>("SELECT max_token FROM names WHERE name = ?").pluck();
    getFence.safeIntegers(true);
    const listAudit = db.prepare<[number, number], RawAudit>(
      "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
    );
    listAudit.safeIntegers(true);
    return {
      begin: db.prepare("BEGIN"),
      commit: db.prepare("COMMIT"),
      rollback: db.prepare("ROLLBACK"),
      getFence,
      // A reset forgets the max; a row left with neither value nor max goes.
      clearFence: db.prepare<[string]>("UPDATE names SET max_token = NULL WHERE name = ?"),
      dropEmpty: db.prepare<[string]>(
        "DELETE FROM names WHERE name = ? AND value IS NULL AND max_token IS NULL",
      ),
      getValue: db.prepare<[string], Buffer>("SELECT value FROM names WHERE name = ?").pluck(),
      listAudit,
      auditBounds: db.prepare("SELECT MIN(seq) AS oldest, MAX(seq) AS newest FROM audit").safeIntegers(true),
      dropAudit: db.prepare<[number]>("DELETE FROM audit WHERE seq < ?"),
    };
  }

  transaction<T>(fn: () => T): T {
    const oldest = this.oldestSeq;
    const newest = this.newestSeq;
    let result: T;
    this.stmt.begin.run();
    try {
      result = fn();
      this.writePending();
      this.dropOldAudit();
      this.stmt.commit.run();
    } catch (err) {
      if (this.db.inTransaction) this.stmt.rollback.run();
      this.fences.clear();
      this.oldestSeq = oldest;
      this.newestSeq = newest;
      throw err;
    } finally {
      this.pending.kv.clear();
      this.pending.fences.clear();
      this.pending.audit.length = 0;
    }
    if (this.presync && ++this.commitsSinceSync >= PRESYNC_COMMITS) this.syncWalInBackground();
    return result;
  }

  /**
   * Writes the transaction's pending changes, at most `ROWS_PER_STATEMENT` rows a statement: one row per
   * name with its new value and new max (`NULL`: unchanged), then the resets, then the audit rows.
   */
  private writePending(): void {
    const { kv, fences, audit } = this.pending;
    const rows: unknown[] = [];
    const resets: string[] = [];
    for (const [name, value] of kv) {
      const max = fences.get(name);
      if (max === null) resets.push(name);
      rows.push(name, value, max ?? null);
    }
    for (const [name, max] of fences) {
      if (kv.has(name)) continue;
      if (max === null) resets.push(name);
      else rows.push(name, null, max);
    }
    this.writeRows("names", rows, 3);
    for (const name of resets) {
      this.stmt.clearFence.run(name);
      this.stmt.dropEmpty.run(name);
    }
    this.writeRows("audit", audit, AUDIT_WIDTH);
  }

  private writeRows(table: "names" | "audit", values: unknown[], width: number): void {
    const rows = values.length / width;
    for (let first = 0; first < rows; first += ROWS_PER_STATEMENT) {
      const count = Math.min(ROWS_PER_STATEMENT, rows - first);
      const slice = count === rows ? values : values.slice(first * width, (first + count) * width);
      this.rowsStatement(table, count, width).run(slice);
    }
  }

  private rowsStatement(table: "names" | "audit", count: number, width: number): Database.Statement {
    const name = `${table} ${count}`;
    let stmt = this.multi.get(name);
    if (stmt === undefined) {
      const row = `(${new Array(width).fill("?").join(", ")})`;
      const rows = new Array(count).fill(row).join(", ");
      const sql =
        table === "names"
          ? `INSERT INTO names (name, value, max_token) VALUES ${rows} ON CONFLICT (name) DO UPDATE SET ` +
            "value = coalesce(excluded.value, value), max_token = coalesce(excluded.max_token, max_token)"
          : `${AUDIT_INSERT}${rows}`;
      stmt = this.db.prepare(sql);
      this.multi.set(name, stmt);
    }
    return stmt;
  }

  /**
   * With `auditKeep`, drops entries before the newest `auditKeep` once an eighth more piled up, at most
   * `MAX_AUDIT_DROP` a batch, so no batch's replies wait for a long delete.
   */
  private dropOldAudit(): void {
    const keep = this.auditKeep;
    if (keep === undefined || this.newestSeq - this.oldestSeq + 1 <= keep + Math.ceil(keep / 8)) return;
    const first = Math.min(this.oldestSeq + MAX_AUDIT_DROP, this.newestSeq - keep + 1);
    this.stmt.dropAudit.run(first);
    this.oldestSeq = first;
  }

  auditAfter(after: number, limit: number): AuditRow[] {
    return this.stmt.listAudit.all(after, limit).map((r) => ({
      seq: Number(r.seq),
      timeMs: Number(r.time_ms),
      op: r.op,
      key: r.key,
      fence: r.fence,
      token: r.token,
      previousMax: r.previous_max,
      accepted: r.accepted === 1n,
      // Rows written since schema version 2 leave the reason to be worded here (see `audit`).
      reason:
        r.reason === ""
          ? reasonOf(verdictOf(r.op, r.accepted === 1n, r.token, r.previous_max), r.token, r.previous_max)
          : r.reason,
      value: r.value,
    }));
  }

  /**
   * Starts an fdatasync of the WAL on libuv's thread pool, so that the sync SQLite makes at the next
   * checkpoint, on the event loop, finds little left to write. Only ever an extra sync: it never throws
   * (a commit has already succeeded) and its errors are left to SQLite's own syncs to meet and report.
   */
  private syncWalInBackground(): void {
    if (this.syncing) return;
    this.commitsSinceSync = 0;
    try {
      // The WAL stays (reused from its start after each checkpoint) until the database is closed.
      this.walFd ??= openSync(`${this.file}-wal`, "r");
    } catch {
      return;
    }
    this.syncing = true;
    fdatasync(this.walFd, () => {
      this.syncing = false;
      if (!this.db.open) this.closeWal();
    });
  }

  /** Closes the WAL descriptor, or leaves it to the sync under way. */
  private closeWal(): void {
    if (this.walFd === undefined || this.syncing) return;
    closeSync(this.walFd);
    this.walFd = undefined;
  }

  /** Closes the database (a WAL checkpoint happens here). Safe to call twice. */
  close(): void {
    if (this.db.open) this.db.close();
    this.closeWal();
  }

  protected fenceMax(fence: string): bigint | null {
    const pending = this.pending.fences.get(fence);
    if (pending !== undefined) return pending;
    let max = this.fences.get(fence);
    if (max === undefined) {
      max = (this.stmt.getFence.get(fence) as bigint | undefined) ?? null;
      this.remember(fence, max);
    }
    return max;
  }

  protected setFenceMax(fence: string, token: bigint): void {
    this.pending.fences.set(fence, token);
    this.remember(fence, token);
  }

  protected deleteFence(fence: string): void {
    this.pending.fences.set(fence, null);
    this.remember(fence, null);
  }

  private remember(fence: string, max: bigint | null): void {
    if (this.fences.size >= FENCE_CACHE_MAX) this.fences.clear();
    this.fences.set(fence, max);
  }

  protected put(key: string, value: Buffer): void {
    this.pending.kv.set(key, value);
  }

  protected get(key: string): Buffer | null {
    return this.pending.kv.get(key) ?? (this.stmt.getValue.get(key) as Buffer | undefined) ?? null;
  }

  protected audit(d: Decision | FenceReset, previous: bigint | null, verdict: Verdict): number {
    const accepted = verdict !== "stale" && verdict !== "token-required";
    const seq = ++this.newestSeq;
    if (this.oldestSeq === 0) this.oldestSeq = seq;
    // The reason follows from op, token, max and verdict, so it is worded when the log is read
    // (`auditAfter`), not stored: one string less to build and write per decision. A reset keeps who
    // made it where a write keeps its value.
    this.pending.audit.push(
      seq,
      Date.now(),
      d.op,
      d.key,
      d.fence,
      d.token,
      previous,
      accepted ? 1 : 0,
      "",
      d.op === "read"
        ? null
        : d.value.length > AUDIT_VALUE_BYTES
          ? d.value.subarray(0, AUDIT_VALUE_BYTES)
          : d.value,
    );
    return seq;
  }
}

/** The verdict an audit row records, from its columns: the inverse of what `RuleStore.decide` audits. */
function verdictOf(
  op: RawAudit["op"],
  accepted: boolean,
  token: bigint | null,
  previous: bigint | null,
): Verdict {
  if (op === "reset") return "reset";
  if (token === null) return accepted ? "unfenced" : "token-required";
  if (!accepted) return "stale";
  if (previous === null) return "first";
  return token === previous ? "equal" : "newer";
}
