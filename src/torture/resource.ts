/**
 * The harness's side of where the counters live: starts the fenced storage server, a real PostgreSQL, or
 * a SQLite file; reads the final values and the record of accepted operations (the storage's audit log,
 * or the audit table the workers' transactions write); crashes and restarts the server when the resource
 * has one.
 */
import { join } from "node:path";
import { ensureFenceTable } from "../guard/postgres/index.js";
import { ensureFenceTable as ensureSqliteFenceTable } from "../guard/sqlite/index.js";
import { StorageClient } from "../storage/index.js";
import { startPostgres, startStorage, tempDir } from "../testkit/index.js";
import type { AuditRecord } from "./checker.js";
import type { ResourceKind } from "./counter.js";
import { TortureError } from "./errors.js";
import { PG, PG_SCHEMA, SQLITE, SQLITE_BUSY_MS, SQLITE_SCHEMA } from "./resource-sql.js";

/** A started resource. */
export interface Resource {
  readonly kind: ResourceKind;
  /** What the workers get as `--url`. */
  readonly url: string;
  /** PIDs of its current server processes (none for SQLite). */
  pids(): number[];
  /** Whether it has a server that `crash()` and `restart()` act on. */
  readonly restartable: boolean;
  /** Kills the server at once (SIGKILL for the storage, PostgreSQL's immediate shutdown). */
  crash(): Promise<void>;
  /** Starts it again on the same data; resolves once it answers. */
  restart(): Promise<void>;
  /** Key → value now (`null` = missing), retrying for a while if the server is coming back. */
  readAll(keys: readonly string[], signal: AbortSignal): Promise<Record<string, string | null>>;
  /** Every accepted operation, in order. */
  readAudit(signal: AbortSignal): Promise<AuditRecord[]>;
  /** Stops the server and removes its files. Safe to call more than once. */
  stop(): Promise<void>;
}

/** Starts the resource; rejects with `TortureError` if it cannot start (nothing is left running). */
export async function startResource(kind: ResourceKind, signal: AbortSignal): Promise<Resource> {
  try {
    if (kind === "postgres") return await startPostgresResource(signal);
    if (kind === "sqlite") return await startSqliteResource();
    return await startStorageResource(signal);
  } catch (err) {
    throw new TortureError(`the ${kind} resource did not start`, { cause: err });
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Runs `fn` until it succeeds, at most 20 times 100 ms apart (a server may still be recovering). */
async function retry<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await abortableSleep(100, signal);
    }
  }
  throw new TortureError(`could not read ${what}`, { cause: last });
}

async function startStorageResource(signal: AbortSignal): Promise<Resource> {
  const storage = await startStorage({ allowUnfenced: true, signal });
  const reader = new StorageClient({ url: storage.url, timeoutMs: 5000 });
  return {
    kind: "storage",
    url: storage.url,
    pids: () => [storage.child.pid],
    restartable: true,
    crash: () => storage.kill(),
    restart: () => storage.restart(),
    async readAll(keys, s) {
      const values: Record<string, string | null> = {};
      for (const key of keys) {
        values[key] = await retry(`${key} from the storage`, s, async () => {
          const buf = await reader.read(key, { signal: s, timeoutMs: 2000 });
          return buf === null ? null : buf.toString("utf8");
        });
      }
      return values;
    },
    async readAudit(s) {
      const out: AuditRecord[] = [];
      let after = 0;
      for (let page = 0; page < 100_000; page++) {
        const entries = await reader.audit({ after, limit: 1000, signal: s, timeoutMs: 10_000 });
        if (entries.length === 0) break;
        out.push(...entries);
        after = entries[entries.length - 1]?.seq ?? after;
      }
      return out;
    },
    stop: () => storage.stop(),
  };
}

interface AuditRow {
  seq: string | number | bigint;
  time_ms: number;
  op: "read" | "write";
  key: string;
  fence: string;
  token: string | bigint | null;
  value: string | null;
}

/** An audit row as the checker reads it: only committed work is in the table, so all of it was accepted. */
function auditRecord(row: AuditRow): AuditRecord {
  return {
    seq: Number(row.seq),
    timeMs: Number(row.time_ms),
    op: row.op,
    key: row.key,
    fence: row.fence,
    token: row.token === null ? null : BigInt(row.token),
    // The fence's previous maximum is not recorded: the checker derives order from the sequence.
    previousMax: null,
    accepted: true,
    reason: "committed",
    value: row.value,
  };
}

async function startPostgresResource(signal: AbortSignal): Promise<Resource> {
  const pg = (await import("pg")).default;
  const server = await startPostgres({ signal });
  const pool = new pg.Pool({ ...server.pgConfig(), max: 2, connectionTimeoutMillis: 5000 });
  pool.on("error", () => {});
  try {
    await pool.query(PG_SCHEMA);
    await ensureFenceTable(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    await server.stop();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    kind: "postgres",
    url: server.connectionString,
    pids: () => [server.child.pid],
    restartable: true,
    crash: () => server.crash(),
    restart: () => server.start(),
    async readAll(keys, s) {
      const values: Record<string, string | null> = {};
      for (const key of keys) {
        values[key] = await retry(`${key} from PostgreSQL`, s, async () => {
          const res = await pool.query<{ value: string }>(PG.read, [key]);
          return res.rows[0]?.value ?? null;
        });
      }
      return values;
    },
    async readAudit(s) {
      const out: AuditRecord[] = [];
      let after = "0";
      for (let page = 0; page < 100_000; page++) {
        const rows = await retry("the audit from PostgreSQL", s, async () => {
          return (await pool.query<AuditRow>(PG.all, [after, 5000])).rows;
        });
        if (rows.length === 0) break;
        out.push(...rows.map(auditRecord));
        after = String(rows[rows.length - 1]?.seq ?? after);
      }
      return out;
    },
    stop() {
      stopped ??= (async () => {
        await pool.end().catch(() => {});
        await server.stop();
      })();
      return stopped;
    },
  };
}

async function startSqliteResource(): Promise<Resource> {
  const Database = (await import("better-sqlite3")).default;
  const dir = await tempDir("torture-sqlite");
  const file = join(dir.path, "counters.db");
  let db: InstanceType<typeof Database>;
  try {
    db = new Database(file, { timeout: SQLITE_BUSY_MS });
    // WAL lets the workers read while one of them writes; it is a property of the file, kept for them.
    db.pragma("journal_mode = WAL");
    db.exec(SQLITE_SCHEMA);
    ensureSqliteFenceTable(db);
  } catch (err) {
    await dir.remove();
    throw err;
  }
  const read = db.prepare<[string], { value: string }>(SQLITE.read);
  const all = db.prepare<[], AuditRow>(SQLITE.all).safeIntegers(true);
  let stopped: Promise<void> | undefined;
  const unsupported = () => Promise.reject(new TortureError("SQLite has no server to crash"));
  return {
    kind: "sqlite",
    url: file,
    pids: () => [],
    restartable: false,
    crash: unsupported,
    restart: unsupported,
    async readAll(keys) {
      const values: Record<string, string | null> = {};
      for (const key of keys) values[key] = read.get(key)?.value ?? null;
      return values;
    },
    async readAudit() {
      return all.all().map((row) => auditRecord({ ...row, time_ms: Number(row.time_ms) }));
    },
    stop() {
      stopped ??= (async () => {
        if (db.open) db.close();
        await dir.remove();
      })();
      return stopped;
    },
  };
}
