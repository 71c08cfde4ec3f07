/**
 * lockd's SQLite file: the source of truth. Every revision of every key is a row of `history` (a delete
 * is a row with version 0, a tombstone); `meta` holds the store revision, the compacted revision, the
 * node's identity and the highest lease ID granted; `leases` the granted leases. WAL mode; a commit is
 * in the OS when it returns, and on disk once a WAL sync after it has succeeded (`sync`, for "full").
 * Integers cross as `bigint` only.
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { LockdStorageError } from "./errors.js";
import type { KeyRange } from "./keys.js";
import { keyBytes } from "./keys.js";

/** One row of `history`: a key at one revision. `version` 0 marks a delete. */
export interface HistoryRow {
  key: Buffer;
  rev: bigint;
  sub: bigint;
  create_rev: bigint;
  version: bigint;
  value: Buffer;
  lease: bigint;
}

/**
 * When a commit counts as durable. "full": the WAL is on disk before the commit returns (survives power
 * loss and OS crashes).
 * "normal": the commit is in the OS before the reply (survives the process being killed, SIGKILL
 * included, but not a power loss or an OS crash); the WAL is fsynced at checkpoints.
 */
export type SyncMode = "full" | "normal";

/** The named integers in `meta`. */
export type MetaName = "revision" | "compact_revision" | "cluster_id" | "member_id" | "term" | "lease_id";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
  rev INTEGER NOT NULL, sub INTEGER NOT NULL, key BLOB NOT NULL, create_rev INTEGER NOT NULL,
  version INTEGER NOT NULL, value BLOB NOT NULL, lease INTEGER NOT NULL, PRIMARY KEY (rev, sub)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_key ON history (key, rev);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL);
`;

const COLUMNS = "key, rev, sub, create_rev, version, value, lease";
// SQLite takes the bare columns of a MAX() aggregate from the row holding the maximum: the latest
// revision of each key at or before the bound.
const LATEST = `SELECT key, MAX(rev) AS rev, sub, create_rev, version, value, lease FROM history`;

/** The database of one lockd node. */
export class LockdDb {
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<LockdDb["prepare"]>;
  /** Whether each commit needs a WAL sync (`sync`) before it counts as durable: "full", on a file. */
  readonly syncsEachCommit: boolean;
  private walFd: number | undefined;
  /** `sync` calls running on libuv's thread pool; `close` leaves the WAL descriptor to the last. */
  private syncing = 0;
  /** Receives the duration of each commit and WAL sync, in seconds (for the metrics). */
  timings: { commit(seconds: number): void; fsync(seconds: number): void } | undefined;

  /** Opens (creating if needed) the database at `path`, or an in-memory one for `":memory:"`. */
  constructor(
    readonly path: string,
    sync: SyncMode = "full",
  ) {
    try {
      this.db = new Database(path);
      this.db.defaultSafeIntegers(true);
      // better-sqlite3 defaults to a 16 MB page cache; the live keys are in memory already, so the cache
      // only serves writes and history reads.
      this.db.pragma("cache_size = -4000");
      if (path !== ":memory:") {
        // One process per database: a second lockd on the same file cannot take the lock, and this one
        // spares the file-lock system calls of every transaction (and the shared-memory WAL index).
        this.db.pragma("locking_mode = EXCLUSIVE");
        this.db.pragma("journal_mode = WAL");
        // NORMAL lets SQLite write the WAL without syncing it; for "full", `commit` then fdatasyncs the
        // WAL itself. Same guarantee as synchronous=FULL, but SQLite as built here would call fsync,
        // which also flushes file metadata and costs about twice as much.
        this.db.pragma("synchronous = NORMAL");
        // Checkpoint often, so the WAL stays small and is soon rewritten in place: an fdatasync of a
        // file that does not grow need not flush metadata, and each checkpoint stays short.
        this.db.pragma("wal_autocheckpoint = 128");
      }
      this.db.exec(SCHEMA);
      this.syncsEachCommit = path !== ":memory:" && sync === "full";
      this.stmt = this.prepare();
    } catch (err) {
      throw new LockdStorageError(`cannot open the lockd database at ${path}`, { cause: err });
    }
  }

  private prepare() {
    const p = (sql: string) => this.db.prepare(sql);
    return {
      begin: p("BEGIN IMMEDIATE"),
      commit: p("COMMIT"),
      rollback: p("ROLLBACK"),
      getMeta: p("SELECT value FROM meta WHERE name = ?").pluck(),
      setMeta: p(
        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      ),
      insert: p(`INSERT INTO history (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      latestAll: p(`SELECT * FROM (${LATEST} GROUP BY key) WHERE version > 0 ORDER BY key`),
      atSingle: p(
        `SELECT * FROM (SELECT ${COLUMNS} FROM history WHERE key = ? AND rev <= ? ORDER BY rev DESC LIMIT 1) WHERE version > 0`,
      ),
      atRange: p(
        `SELECT * FROM (${LATEST} WHERE key >= ? AND key < ? AND rev <= ? GROUP BY key) WHERE version > 0 ORDER BY key`,
      ),
      atFrom: p(
        `SELECT * FROM (${LATEST} WHERE key >= ? AND rev <= ? GROUP BY key) WHERE version > 0 ORDER BY key`,
      ),
      // A page of a range at a revision: the latest row of each key after the cursor, tombstones included
      // (they advance the cursor; the caller drops them).
      pageRange: p(
        `${LATEST} WHERE key >= @start AND key > @after AND key < @end AND rev <= @rev GROUP BY key ORDER BY key LIMIT @limit`,
      ),
      pageFrom: p(
        `${LATEST} WHERE key >= @start AND key > @after AND rev <= @rev GROUP BY key ORDER BY key LIMIT @limit`,
      ),
      valuesBetween: p(
        "SELECT key, rev, value FROM history WHERE key >= ? AND key <= ? AND length(value) > ? ORDER BY key, rev",
      ).raw(),
      historyPage: p(
        `SELECT ${COLUMNS} FROM history WHERE (rev, sub) > (@rev, @sub) AND rev <= @upTo ORDER BY rev, sub LIMIT @limit`,
      ),
      prev: p(`SELECT ${COLUMNS} FROM history WHERE key = ? AND rev < ? ORDER BY rev DESC LIMIT 1`),
      newest: p("SELECT MAX(rev) FROM history").pluck(),
      valueAt: p("SELECT value FROM history WHERE key = ? AND rev = ?").pluck(),
      events: p(`SELECT ${COLUMNS} FROM history WHERE rev >= ? AND rev <= ? ORDER BY rev, sub`),
      compact: p(
        `DELETE FROM history WHERE rev <= @rev AND (version = 0 OR EXISTS (SELECT 1 FROM history h
           WHERE h.key = history.key AND h.rev > history.rev AND h.rev <= @rev))`,
      ),
      insertLease: p("INSERT INTO leases (id, ttl) VALUES (?, ?)"),
      deleteLease: p("DELETE FROM leases WHERE id = ?"),
      allLeases: p("SELECT id, ttl FROM leases"),
      pageCount: p("PRAGMA page_count").pluck(),
      freeCount: p("PRAGMA freelist_count").pluck(),
      pageSize: p("PRAGMA page_size").pluck(),
    };
  }

  /** Reads a `meta` integer, or `undefined` if it was never written. */
  meta(name: MetaName): bigint | undefined {
    return this.stmt.getMeta.get(name) as bigint | undefined;
  }

  /** Writes a `meta` integer (inside the current transaction, if any). */
  setMeta(name: MetaName, value: bigint): void {
    this.stmt.setMeta.run(name, value);
  }

  /** Starts the write transaction that the next `commit` makes durable. */
  begin(): void {
    this.stmt.begin.run();
  }

  /**
   * Commits: when it returns, the transaction is in the OS (it survives the process being killed). With
   * `syncsEachCommit` it is durable only once a `sync` that began after this call has succeeded.
   */
  commit(): void {
    const t0 = performance.now();
    this.stmt.commit.run();
    this.timings?.commit((performance.now() - t0) / 1000);
  }

  /**
   * fdatasyncs the WAL on libuv's thread pool, so the event loop serves requests meanwhile, and calls
   * `done` (with the error, if it failed): every commit made before this call is then on disk. Several
   * may run at once, each for the commits before it. Throws if the WAL cannot be opened.
   */
  sync(done: (err: Error | null) => void): void {
    const fd = this.walFile();
    const t0 = performance.now();
    this.syncing++;
    fdatasync(fd, (err) => {
      this.syncing--;
      // Closed meanwhile: the descriptor was left open for the syncs still running.
      if (this.syncing === 0 && !this.db.open) this.closeWal();
      if (!err) this.timings?.fsync((performance.now() - t0) / 1000);
      done(err);
    });
  }

  /** `sync`, blocking: for the last commit before the node closes. */
  syncNow(): void {
    const t0 = performance.now();
    fdatasyncSync(this.walFile());
    this.timings?.fsync((performance.now() - t0) / 1000);
  }

  private walFile(): number {
    if (this.walFd === undefined) {
      // The first commit: the WAL file now exists, and stays (the same file, reused from its start after
      // each checkpoint) until the connection closes. Its directory entry is synced once.
      const walPath = `${this.path}-wal`;
      this.walFd = openSync(walPath, "r");
      const dir = openSync(dirname(walPath), "r");
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
    return this.walFd;
  }

  private closeWal(): void {
    if (this.walFd !== undefined) closeSync(this.walFd);
    this.walFd = undefined;
  }

  /** Abandons the open transaction, if there is one. */
  rollback(): void {
    if (this.db.inTransaction) this.stmt.rollback.run();
  }

  /** Appends one revision of one key. */
  insert(row: HistoryRow): void {
    this.stmt.insert.run(row.key, row.rev, row.sub, row.create_rev, row.version, row.value, row.lease);
  }

  /** The latest revision of every live key, in key order. */
  latest(): IterableIterator<HistoryRow> {
    return this.stmt.latestAll.iterate() as IterableIterator<HistoryRow>;
  }

  /** The live keys of `range` as they were at revision `rev`, in key order. */
  rangeAt(range: KeyRange, rev: bigint): HistoryRow[] {
    if ("single" in range) return this.stmt.atSingle.all(keyBytes(range.single), rev) as HistoryRow[];
    if (range.end === null) return this.stmt.atFrom.all(keyBytes(range.start), rev) as HistoryRow[];
    if (range.end <= range.start) return [];
    return this.stmt.atRange.all(keyBytes(range.start), keyBytes(range.end), rev) as HistoryRow[];
  }

  /**
   * Up to `limit` keys of a range (`end` null: every key from `start`) as they were at revision `rev`,
   * after the key `after` (empty: from the start), in key order; deleted keys come as tombstones
   * (version 0), so that the last row is the next page's cursor. Fewer than `limit` rows: the last page.
   */
  rangePage(start: Buffer, end: Buffer | null, rev: bigint, after: Buffer, limit: number): HistoryRow[] {
    if (end === null) return this.stmt.pageFrom.all({ start, rev, after, limit }) as HistoryRow[];
    return this.stmt.pageRange.all({ start, end, rev, after, limit }) as HistoryRow[];
  }

  /**
   * The values longer than `longer` bytes of every kept revision of the keys from `first` to `last`
   * (inclusive), as `[key, rev, value]` in key and revision order: one query for a step of a large
   * answer, instead of one per key.
   */
  valuesBetween(first: Buffer, last: Buffer, longer: number): [Buffer, bigint, Buffer][] {
    return this.stmt.valuesBetween.all(first, last, longer) as [Buffer, bigint, Buffer][];
  }

  /** Up to `limit` rows of history after (`rev`, `sub`) and at or below revision `upTo`, in order. */
  historyPage(rev: bigint, sub: bigint, upTo: bigint, limit: number): HistoryRow[] {
    return this.stmt.historyPage.all({ rev, sub, upTo, limit }) as HistoryRow[];
  }

  /** The value of `key` at exactly revision `rev`, if that row is kept. */
  valueAt(key: Buffer, rev: bigint): Buffer | undefined {
    return this.stmt.valueAt.get(key, rev) as Buffer | undefined;
  }

  /** The newest revision in history, if any. */
  newestRev(): bigint | undefined {
    return (this.stmt.newest.get() as bigint | null) ?? undefined;
  }

  /** The revision of `key` just before revision `rev`, if still kept (a tombstone has version 0). */
  previous(key: Buffer, rev: bigint): HistoryRow | undefined {
    return this.stmt.prev.get(key, rev) as HistoryRow | undefined;
  }

  /** Every change with a revision in [from, to], in order. */
  changes(from: bigint, to: bigint): HistoryRow[] {
    return this.stmt.events.all(from, to) as HistoryRow[];
  }

  /**
   * Forgets history at and below `rev` except, for each key, its latest revision ≤ `rev` unless that is a
   * delete: what reads at revisions ≥ `rev` and watches from `rev + 1` still need.
   */
  compact(rev: bigint): void {
    this.stmt.compact.run({ rev });
  }

  /** Records a granted lease. */
  insertLease(id: bigint, ttl: bigint): void {
    this.stmt.insertLease.run(id, ttl);
  }

  /** Forgets a lease. */
  deleteLease(id: bigint): void {
    this.stmt.deleteLease.run(id);
  }

  /** Every recorded lease. */
  leases(): { id: bigint; ttl: bigint }[] {
    return this.stmt.allLeases.all() as { id: bigint; ttl: bigint }[];
  }

  /** Size of the database file and the part of it in use, in bytes. */
  size(): { total: bigint; inUse: bigint } {
    const pageSize = this.stmt.pageSize.get() as bigint;
    const pages = this.stmt.pageCount.get() as bigint;
    const free = this.stmt.freeCount.get() as bigint;
    return { total: pages * pageSize, inUse: (pages - free) * pageSize };
  }

  /** Checkpoints the WAL and closes the file. Safe to call twice. */
  close(): void {
    if (!this.db.open) return;
    this.rollback();
    this.db.close();
    if (this.syncing === 0) this.closeWal();
  }
}
