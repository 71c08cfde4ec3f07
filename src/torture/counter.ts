/**
 * Where a torture worker keeps the counters: the fenced storage server, or a user's database behind the
 * fencing guard (PostgreSQL through `pg`, SQLite through better-sqlite3). Each store reads and writes one
 * key, with the holder's token (a guarded transaction) or without it (a plain one), and says of a failure
 * whether it certainly had no effect (`fail`) or may have (`info`), which is what the history records.
 */
import {
  DatabaseUnavailableError,
  GuardAbortedError,
  GuardArgumentError,
  StaleTokenError as GuardStaleTokenError,
  GuardTimeoutError,
  RolledBackError,
  TransactionConflictError,
} from "../guard/errors.js";
import { type PgPoolClientLike, type PgPoolLike, withFence as pgWithFence } from "../guard/postgres/index.js";
import { guardErrorOf } from "../guard/postgres/pg-errors.js";
import { withFence as sqliteWithFence } from "../guard/sqlite/index.js";
import { StaleTokenError, StorageClient } from "../storage/index.js";
import { PG, SQLITE, SQLITE_BUSY_MS } from "./resource-sql.js";

/** Where the counters live. */
export type ResourceKind = "storage" | "postgres" | "sqlite";

/** The resources, in the order the help text lists them. */
export const RESOURCE_KINDS: readonly ResourceKind[] = ["storage", "postgres", "sqlite"];

/** One worker's connection to the counters. */
export interface CounterStore {
  /** Reads `key`; with `token`, a fenced read (refused for a stale token). */
  read(key: string, fence: string, token: bigint | undefined): Promise<string | null>;
  /** Writes `value` to `key`; with `token`, a fenced write. */
  write(key: string, fence: string, token: bigint | undefined, value: string): Promise<void>;
  /** `fail` if the failed call certainly changed nothing, `info` if its effect is unknown. */
  outcomeOf(err: unknown): "fail" | "info";
  /** Releases connections. Safe to call more than once. */
  close(): Promise<void>;
}

/** Opens the store a worker was told to use; `url` is the storage URL, a connection string or a file. */
export async function openCounterStore(
  kind: ResourceKind,
  url: string,
  timeoutMs: number,
): Promise<CounterStore> {
  if (kind === "postgres") return openPostgres(url, timeoutMs);
  if (kind === "sqlite") return openSqlite(url);
  return openStorage(url, timeoutMs);
}

function openStorage(url: string, timeoutMs: number): CounterStore {
  const storage = new StorageClient({ url, timeoutMs });
  return {
    async read(key, fence, token) {
      const buf = await storage.read(key, { fence, timeoutMs, ...(token === undefined ? {} : { token }) });
      return buf === null ? null : buf.toString("utf8");
    },
    async write(key, fence, token, value) {
      await storage.write(key, value, { fence, timeoutMs, ...(token === undefined ? {} : { token }) });
    },
    // The storage refuses a stale token before doing anything; any other failure may have landed.
    outcomeOf: (err) => (err instanceof StaleTokenError ? "fail" : "info"),
    close: async () => {},
  };
}

/** Failures of a guarded (or plain) transaction that leave it rolled back for sure. */
function guardOutcome(err: unknown): "fail" | "info" {
  if (
    err instanceof GuardStaleTokenError ||
    err instanceof TransactionConflictError ||
    err instanceof RolledBackError ||
    err instanceof GuardTimeoutError ||
    err instanceof GuardAbortedError ||
    err instanceof GuardArgumentError
  ) {
    return "fail";
  }
  if (err instanceof DatabaseUnavailableError) return err.outcome === "unknown" ? "info" : "fail";
  return "info";
}

const nowMs = () => performance.timeOrigin + performance.now();

async function openPostgres(connectionString: string, timeoutMs: number): Promise<CounterStore> {
  // `pg` is an optional peer dependency: only a PostgreSQL run loads it.
  const pg = (await import("pg")).default;
  const pool = new pg.Pool({
    connectionString,
    max: 2,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
  });
  // A crash of the server breaks idle connections too; the next query reports it.
  pool.on("error", () => {});
  const db = pool as unknown as PgPoolLike;

  /**
   * A plain transaction, the unfenced worker's: no fence check, otherwise the same statements. Any error
   * drops the connection, so before COMMIT it certainly rolled back; during COMMIT only the database knows.
   */
  const plain = async <T>(fn: (c: PgPoolClientLike) => Promise<T>): Promise<T> => {
    let conn: PgPoolClientLike;
    try {
      conn = await db.connect();
    } catch (err) {
      throw new DatabaseUnavailableError(`could not connect: ${(err as Error).message}`, "rolled-back", {
        cause: err,
      });
    }
    // A server crash while this connection is lent out is an 'error' event on it, fatal unless heard;
    // the failing query reports it anyway.
    const ignore = () => {};
    conn.on("error", ignore);
    let phase: "work" | "commit" = "work";
    try {
      await conn.query("BEGIN");
      const result = await fn(conn);
      phase = "commit";
      await conn.query("COMMIT");
      conn.removeListener("error", ignore);
      conn.release();
      return result;
    } catch (err) {
      conn.removeListener("error", ignore);
      conn.release(err as Error);
      const mapped = guardErrorOf(err, phase);
      if (mapped instanceof TransactionConflictError || mapped instanceof DatabaseUnavailableError)
        throw mapped;
      throw new DatabaseUnavailableError(
        `the transaction failed (${(err as Error).message}); its connection was dropped`,
        phase === "commit" ? "unknown" : "rolled-back",
        { cause: err },
      );
    }
  };
  const run = <T>(fence: string, token: bigint | undefined, fn: (c: PgPoolClientLike) => Promise<T>) =>
    token === undefined ? plain(fn) : pgWithFence(db, { fence, token, timeoutMs }, (tx) => fn(tx));

  return {
    read: (key, fence, token) =>
      run(fence, token, async (c) => {
        const res = (await c.query(PG.read, [key])) as { rows: { value: string }[] };
        // Fenced reads are decisions of the fence, recorded like the storage's; plain reads are not.
        if (token !== undefined)
          await c.query(PG.audit, [nowMs(), "read", key, fence, token.toString(), null]);
        return res.rows[0]?.value ?? null;
      }),
    write: (key, fence, token, value) =>
      run(fence, token, async (c) => {
        await c.query(PG.write, [key, value]);
        await c.query(PG.audit, [nowMs(), "write", key, fence, token?.toString() ?? null, value]);
      }),
    outcomeOf: guardOutcome,
    close: () => pool.end().catch(() => {}),
  };
}

async function openSqlite(file: string): Promise<CounterStore> {
  const Database = (await import("better-sqlite3")).default;
  const db = new Database(file, { timeout: SQLITE_BUSY_MS });
  const read = db.prepare<[string], { value: string }>(SQLITE.read);
  const write = db.prepare(SQLITE.write);
  const audit = db.prepare(SQLITE.audit);
  // better-sqlite3 rolls a transaction function back on any error it throws, COMMIT's own included.
  const plain = db.transaction((key: string, fence: string, value: string) => {
    write.run(key, value);
    audit.run(nowMs(), "write", key, fence, null, value);
  });
  return {
    async read(key, fence, token) {
      if (token === undefined) return read.get(key)?.value ?? null;
      return sqliteWithFence(db, { fence, token }, () => {
        const value = read.get(key)?.value ?? null;
        audit.run(nowMs(), "read", key, fence, token, null);
        return value;
      });
    },
    async write(key, fence, token, value) {
      if (token === undefined) {
        plain.immediate(key, fence, value);
        return;
      }
      sqliteWithFence(db, { fence, token }, () => {
        write.run(key, value);
        audit.run(nowMs(), "write", key, fence, token, value);
      });
    },
    outcomeOf(err) {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === "string" && code.startsWith("SQLITE_BUSY")) return "fail";
      return guardOutcome(err);
    },
    async close() {
      if (db.open) db.close();
    },
  };
}
