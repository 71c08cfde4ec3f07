/**
 * The fenced store on SQLite: the rule of DESIGN §3 (accept iff token >= maxSeen[fence]), the data, the
 * fences and the audit log in one database, so a decision and its effects commit together or not at all.
 * Synchronous by design (better-sqlite3); `Batcher` groups the decisions of one event-loop turn into one
 * transaction.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

/**
 * One request that needs a fencing decision: a write (with or without a token) or a fenced read. A read
 * without a token needs no decision (`Store.read`).
 */
export type Decision =
  | { op: "write"; key: string; fence: string; token: bigint | null; value: Buffer }
  | { op: "read"; key: string; fence: string; token: bigint };

/** What a decision came to. A rejection wrote nothing but its audit row. */
export type Outcome =
  | { kind: "written"; seq: number; maxToken: bigint | null }
  | { kind: "read"; seq: number; value: Buffer | null; maxToken: bigint | null }
  | { kind: "stale"; seq: number; token: bigint; maxToken: bigint; reason: string }
  | { kind: "token-required"; seq: number; reason: string };

/** One row of the audit log, as stored. */
export interface AuditRow {
  seq: number;
  timeMs: number;
  op: "read" | "write";
  key: string;
  fence: string;
  token: bigint | null;
  previousMax: bigint | null;
  accepted: boolean;
  reason: string;
  /** The first bytes of a written value; `null` for reads. */
  value: Buffer | null;
}

/** How the store is opened. */
export interface StoreOptions {
  /** Directory of the database file `storage.sqlite`; created if missing. Ignored with `memory`. */
  dataDir?: string;
  /** A throwaway in-memory database with the same rule. */
  memory?: boolean;
  /**
   * SQLite `synchronous` in WAL mode. `normal` (default): a commit is in the WAL file before the reply,
   * so it survives the death of the process (SIGKILL), not of the machine. `full`: fsync per commit, so
   * it also survives an OS crash or power loss, at a much lower write rate.
   */
  synchronous?: "normal" | "full";
  /** Accept writes without a token (they bypass the fence). */
  allowUnfenced?: boolean;
}

/** How many bytes of a written value the audit log keeps. */
export const AUDIT_VALUE_BYTES = 256;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fences (name TEXT PRIMARY KEY, max_token INTEGER NOT NULL) WITHOUT ROWID;
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

interface RawAudit {
  seq: bigint;
  time_ms: bigint;
  op: "read" | "write";
  key: string;
  fence: string;
  token: bigint | null;
  previous_max: bigint | null;
  accepted: bigint;
  reason: string;
  value: Buffer | null;
}

/** The database and the rule. Every method is synchronous; `close` is final. */
export class Store {
  readonly file: string;
  readonly allowUnfenced: boolean;
  private readonly db: Database.Database;
  private readonly getFence: Database.Statement<[string], { max_token: bigint }>;
  private readonly setFence: Database.Statement<[string, bigint]>;
  private readonly getValue: Database.Statement<[string], { value: Buffer }>;
  private readonly putValue: Database.Statement<[string, Buffer]>;
  private readonly addAudit: Database.Statement<
    [number, string, string, string, bigint | null, bigint | null, number, string, Buffer | null]
  >;
  private readonly listAudit: Database.Statement<[number, number], RawAudit>;

  constructor(options: StoreOptions = {}) {
    this.allowUnfenced = options.allowUnfenced ?? false;
    if (options.memory) {
      this.file = ":memory:";
    } else {
      const dir = options.dataDir ?? ".fencelock/storage";
      mkdirSync(dir, { recursive: true });
      this.file = join(dir, "storage.sqlite");
    }
    // A second server on the same directory waits this long for the lock, then fails to start.
    this.db = new Database(this.file, { timeout: 2000 });
    if (!options.memory) {
      // One server per database: the exclusive lock makes a second server on the same directory fail at
      // start, and spares the per-transaction file-lock system calls of shared mode.
      this.db.pragma("locking_mode = EXCLUSIVE");
      this.db.pragma("journal_mode = WAL");
      this.db.pragma(`synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
    }
    this.db.exec(SCHEMA);
    this.getFence = this.db.prepare<[string], { max_token: bigint }>(
      "SELECT max_token FROM fences WHERE name = ?",
    );
    this.getFence.safeIntegers(true);
    this.setFence = this.db.prepare<[string, bigint]>(
      "INSERT INTO fences (name, max_token) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET max_token = excluded.max_token",
    );
    this.getValue = this.db.prepare<[string], { value: Buffer }>("SELECT value FROM kv WHERE key = ?");
    this.putValue = this.db.prepare<[string, Buffer]>(
      "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    );
    this.addAudit = this.db.prepare(
      "INSERT INTO audit (time_ms, op, key, fence, token, previous_max, accepted, reason, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    this.listAudit = this.db.prepare<[number, number], RawAudit>(
      "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
    );
    this.listAudit.safeIntegers(true);
  }

  /** Runs `fn` in one transaction: all its decisions commit together, or none does (it throws). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * Applies the rule to one request and records the decision in the audit log. Call inside
   * `transaction`. A rejection writes only its audit row.
   */
  decide(d: Decision): Outcome {
    const row = this.getFence.get(d.fence);
    const previous = row ? row.max_token : null;
    const now = Date.now();
    const preview = d.op === "write" ? d.value.subarray(0, AUDIT_VALUE_BYTES) : null;
    if (d.op === "write" && d.token === null) {
      if (!this.allowUnfenced) {
        const reason = "rejected: a write needs a fencing token";
        const seq = this.audit(now, d, previous, false, reason, preview);
        return { kind: "token-required", seq, reason };
      }
      // An unfenced write bypasses the fence on purpose (the demo's unsafe case) and leaves it unchanged.
      this.putValue.run(d.key, d.value);
      const seq = this.audit(now, d, previous, true, "accepted: unfenced write (--allow-unfenced)", preview);
      return { kind: "written", seq, maxToken: previous };
    }
    const token = d.token as bigint;
    if (previous !== null && token < previous) {
      const reason = `rejected: stale token ${token} < max ${previous}`;
      const seq = this.audit(now, d, previous, false, reason, preview);
      return { kind: "stale", seq, token: token, maxToken: previous, reason };
    }
    let reason: string;
    if (previous === null) reason = `accepted: first token ${token}`;
    else if (token === previous) reason = `accepted: token ${token} = max`;
    else reason = `accepted: token ${token} > max ${previous}`;
    if (previous === null || token > previous) this.setFence.run(d.fence, token);
    if (d.op === "write") {
      this.putValue.run(d.key, d.value);
      const seq = this.audit(now, d, previous, true, reason, preview);
      return { kind: "written", seq, maxToken: token };
    }
    const seq = this.audit(now, d, previous, true, reason, null);
    return { kind: "read", seq, value: this.getValue.get(d.key)?.value ?? null, maxToken: token };
  }

  /** A read without a token: no decision, no audit row. */
  read(key: string, fence: string): { value: Buffer | null; maxToken: bigint | null } {
    return { value: this.getValue.get(key)?.value ?? null, maxToken: this.maxToken(fence) };
  }

  /** The highest token `fence` has seen; `null` if it never saw one. */
  maxToken(fence: string): bigint | null {
    return this.getFence.get(fence)?.max_token ?? null;
  }

  /** Audit rows with `seq > after`, oldest first, at most `limit`. */
  auditAfter(after: number, limit: number): AuditRow[] {
    return this.listAudit.all(after, limit).map((r) => ({
      seq: Number(r.seq),
      timeMs: Number(r.time_ms),
      op: r.op,
      key: r.key,
      fence: r.fence,
      token: r.token,
      previousMax: r.previous_max,
      accepted: r.accepted === 1n,
      reason: r.reason,
      value: r.value,
    }));
  }

  /** Closes the database (a WAL checkpoint happens here). Safe to call twice. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  private audit(
    now: number,
    d: Decision,
    previous: bigint | null,
    accepted: boolean,
    reason: string,
    preview: Buffer | null,
  ): number {
    const info = this.addAudit.run(
      now,
      d.op,
      d.key,
      d.fence,
      d.token,
      previous,
      accepted ? 1 : 0,
      reason,
      preview,
    );
    return Number(info.lastInsertRowid);
  }
}
