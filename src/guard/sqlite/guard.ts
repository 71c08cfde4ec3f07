/**
 * A guarded unit of work on SQLite through better-sqlite3: `BEGIN IMMEDIATE` (the write lock first, so two
 * holders never both pass the check), the fence check (docs/design.md §3), the caller's statements, COMMIT.
 * Synchronous, like better-sqlite3 itself.
 */
import type BetterSqlite3 from "better-sqlite3";
import {
  checkFenceArgs,
  checkFenceName,
  checkTable,
  DEFAULT_FENCE_TABLE,
  type FenceArgs,
  MAX_FENCE_BYTES,
} from "../args.js";
import {
  FenceTableMissingError,
  GuardArgumentError,
  StaleTokenError,
  TransactionConflictError,
} from "../errors.js";

type Database = BetterSqlite3.Database;

/** Options naming the fence table. */
export interface TableOptions {
  /** The fence table, `name` or `schema.name`; default `fencelock_fences`. */
  table?: string;
}

/** The `CREATE TABLE` statement of a fence table; `sql/sqlite-fences.sql` is it for the default name. */
export function fenceTableSql(table: string = DEFAULT_FENCE_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  name       TEXT    PRIMARY KEY NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND ${MAX_FENCE_BYTES}),
  max_token  INTEGER NOT NULL CHECK (typeof(max_token) = 'integer' AND max_token >= 1),
  updated_at INTEGER NOT NULL
);
`;
}

interface Statements {
  raise: BetterSqlite3.Statement<[string, bigint, number]>;
  max: BetterSqlite3.Statement<[string]>;
  reset: BetterSqlite3.Statement<[string]>;
}

const cache = new WeakMap<Database, Map<string, Statements>>();

function statements(db: Database, table: string): Statements {
  let byTable = cache.get(db);
  if (!byTable) {
    byTable = new Map();
    cache.set(db, byTable);
  }
  let s = byTable.get(table);
  if (!s) {
    s = prepare(db, table);
    byTable.set(table, s);
  }
  return s;
}

function prepare(db: Database, table: string): Statements {
  try {
    return {
      raise: db
        .prepare<[string, bigint, number]>(
          `INSERT INTO ${table} AS f (name, max_token, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET max_token = excluded.max_token, updated_at = excluded.updated_at
WHERE f.max_token <= excluded.max_token
RETURNING max_token`,
        )
        .safeIntegers(true),
      max: db.prepare<[string]>(`SELECT max_token FROM ${table} WHERE name = ?`).safeIntegers(true),
      reset: db
        .prepare<[string]>(`DELETE FROM ${table} WHERE name = ? RETURNING max_token`)
        .safeIntegers(true),
    };
  } catch (err) {
    if (/no such table/.test((err as Error).message)) throw new FenceTableMissingError(table, { cause: err });
    throw err;
  }
}

function checkDb(db: unknown): Database {
  if (typeof db !== "object" || db === null || typeof (db as Database).prepare !== "function") {
    throw new GuardArgumentError("pass a better-sqlite3 Database");
  }
  if (!(db as Database).open) throw new GuardArgumentError("the database is closed");
  return db as Database;
}

function busy(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "SQLITE_BUSY" || code === "SQLITE_BUSY_SNAPSHOT" || code === "SQLITE_LOCKED") {
    return new TransactionConflictError(
      `SQLite is busy (${code}): another connection holds the write lock; nothing was written, run it again`,
      { cause: err },
    );
  }
  return err;
}

/** Creates the fence table if it does not exist. Safe to call again. */
export function ensureFenceTable(db: Database, options: TableOptions = {}): void {
  checkDb(db).exec(fenceTableSql(checkTable(options.table)));
}

/**
 * Applies the fence inside the caller's own open transaction (`db.transaction(fn)`, preferably
 * `.immediate()`). Returns once the fence holds this token; throws `StaleTokenError` if it has seen a higher
 * one (better-sqlite3's transaction function then rolls back everything it did), `GuardArgumentError` for
 * bad arguments or when no transaction is open (the check would commit on its own and guard nothing). A
 * second call with the same token passes.
 */
export function checkFence(db: Database, args: FenceArgs): void {
  const { fence, token, table } = checkFenceArgs(args);
  checkDb(db);
  if (!db.inTransaction) {
    throw new GuardArgumentError(
      "checkFence must run inside a transaction; use withFence, or db.transaction(...)",
    );
  }
  const s = statements(db, table);
  try {
    if (s.raise.get(fence, token, Date.now()) !== undefined) return;
    const row = s.max.get(fence) as { max_token: bigint } | undefined;
    throw new StaleTokenError(token, row?.max_token ?? token, fence);
  } catch (err) {
    throw busy(err);
  }
}

/**
 * Runs `fn(db)` in one `BEGIN IMMEDIATE` transaction guarded by the fence, and commits. Returns what `fn`
 * returns. Throws, with everything rolled back: `StaleTokenError` if the fence has seen a higher token
 * (before `fn` runs); what `fn` throws; `TransactionConflictError` (retryable) if another connection held
 * the write lock past the database's busy timeout; `GuardArgumentError` for bad arguments, when a
 * transaction is already open on `db` (use `checkFence` inside it), or when `fn` returns a promise (a
 * SQLite transaction must not span an await). Nothing here waits asynchronously, so there is no signal:
 * the wait for the write lock is bounded by the connection's `timeout` option (better-sqlite3's default
 * 5 s).
 */
export function withFence<T>(db: Database, args: FenceArgs, fn: (db: Database) => T): T {
  checkDb(db);
  checkFenceArgs(args);
  if (typeof fn !== "function") throw new GuardArgumentError("withFence needs a function to run");
  if (db.inTransaction) {
    throw new GuardArgumentError("a transaction is already open on this database; call checkFence inside it");
  }
  const run = db.transaction(() => {
    checkFence(db, args);
    const result = fn(db);
    if (typeof (result as { then?: unknown } | null)?.then === "function") {
      throw new GuardArgumentError(
        "the guarded function returned a promise: a SQLite transaction cannot span an await",
      );
    }
    return result;
  });
  try {
    return run.immediate();
  } catch (err) {
    throw busy(err);
  }
}

/** The highest token fence `name` has accepted, or `null` if it has none (never used, or reset). */
export function fenceMax(db: Database, name: string, options: TableOptions = {}): bigint | null {
  const row = statements(checkDb(db), checkTable(options.table)).max.get(checkFenceName(name)) as
    | { max_token: bigint }
    | undefined;
  return row?.max_token ?? null;
}

/**
 * Forgets fence `name`, so the next token of any value is accepted as its first: the operator's way out
 * when a fence holds a token no legitimate holder will reach. Dangerous: until a newer holder writes, a
 * stale holder's late write is accepted again. Returns the max it had, or `null` if there was no such
 * fence (so a second call returns `null`).
 */
export function resetFence(db: Database, name: string, options: TableOptions = {}): bigint | null {
  const row = statements(checkDb(db), checkTable(options.table)).reset.get(checkFenceName(name)) as
    | { max_token: bigint }
    | undefined;
  return row?.max_token ?? null;
}
