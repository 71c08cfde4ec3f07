/**
 * The tables a torture run keeps in a user's database (`--resource postgres|sqlite`): the counters, and an
 * audit of every committed read and write, inserted by the same transaction as the work it records. Only
 * what committed is in it (a refused or rolled-back transaction takes its audit row with it), which is
 * exactly what the checker replays. Shared by the harness (which creates and reads the tables) and the
 * workers (which write them).
 */

/** The counters: one row per key, its value as the workers encode it. */
export const COUNTERS_TABLE = "torture_counters";
/** The audit: one row per committed read (fenced ones) or write, in commit order per fence. */
export const AUDIT_TABLE = "torture_audit";

/** PostgreSQL: the two tables (the fence table is the guard's own, `ensureFenceTable`). */
export const PG_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${COUNTERS_TABLE} (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS ${AUDIT_TABLE} (
  seq     bigserial PRIMARY KEY,
  time_ms double precision NOT NULL,
  op      text NOT NULL CHECK (op IN ('read', 'write')),
  key     text NOT NULL,
  fence   text NOT NULL,
  token   bigint,
  value   text
);`;

/** SQLite: the same tables; AUTOINCREMENT so that a sequence number is never reused. */
export const SQLITE_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${COUNTERS_TABLE} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ${AUDIT_TABLE} (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms REAL NOT NULL,
  op      TEXT NOT NULL CHECK (op IN ('read', 'write')),
  key     TEXT NOT NULL,
  fence   TEXT NOT NULL,
  token   INTEGER,
  value   TEXT
);`;

/** Statements with PostgreSQL's `$n` placeholders. */
export const PG = {
  read: `SELECT value FROM ${COUNTERS_TABLE} WHERE key = $1`,
  // The audit row goes in after the counter's row lock (or the fence row's) is held, so that sequence
  // numbers follow the order in which transactions on one key commit.
  write: `INSERT INTO ${COUNTERS_TABLE} (key, value) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  audit: `INSERT INTO ${AUDIT_TABLE} (time_ms, op, key, fence, token, value) VALUES ($1, $2, $3, $4, $5, $6)`,
  all: `SELECT seq::text AS seq, time_ms, op, key, fence, token::text AS token, value FROM ${AUDIT_TABLE}
WHERE seq > $1 ORDER BY ${AUDIT_TABLE}.seq LIMIT $2`,
} as const;

/** Statements with SQLite's `?` placeholders. */
export const SQLITE = {
  read: `SELECT value FROM ${COUNTERS_TABLE} WHERE key = ?`,
  write: `INSERT INTO ${COUNTERS_TABLE} (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
  audit: `INSERT INTO ${AUDIT_TABLE} (time_ms, op, key, fence, token, value) VALUES (?, ?, ?, ?, ?, ?)`,
  all: `SELECT seq, time_ms, op, key, fence, token, value FROM ${AUDIT_TABLE} ORDER BY seq`,
} as const;

/** How long a SQLite connection waits for another's write lock before `SQLITE_BUSY`, ms. */
export const SQLITE_BUSY_MS = 2000;
