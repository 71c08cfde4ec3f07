/**
 * The fence table in PostgreSQL: one row per fence, its name and the highest token it has accepted.
 * `sql/postgres-fences.sql` is the same statement for the default table name, for migration tools.
 */
import { checkFenceName, checkTable, DEFAULT_FENCE_TABLE, MAX_FENCE_BYTES } from "../args.js";
import { FenceTableMissingError } from "../errors.js";
import { type Query, rowsOf } from "./query.js";

/** The `CREATE TABLE` statement of a fence table. `table` must already be checked. */
export function fenceTableSql(table: string = DEFAULT_FENCE_TABLE): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  name       text        PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND ${MAX_FENCE_BYTES}),
  max_token  bigint      NOT NULL CHECK (max_token >= 1),
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;
}

/** Options naming the fence table. */
export interface TableOptions {
  /** The fence table, `name` or `schema.name`; default `fencelock_fences`. */
  table?: string;
}

/** Something that runs SQL: a `pg` `Pool` or `Client`, or a driver-neutral `query` function. */
export type Queryable = { query(sql: string, params?: unknown[]): Promise<unknown> } | Query;

/** Runs one statement; on a fence `table` that does not exist, rejects with `FenceTableMissingError`. */
async function run(db: Queryable, sql: string, params: unknown[], table?: string): Promise<unknown> {
  try {
    return await (typeof db === "function" ? db(sql, params) : db.query(sql, params));
  } catch (err) {
    if (table !== undefined && (err as { code?: unknown }).code === "42P01") {
      throw new FenceTableMissingError(table, { cause: err });
    }
    throw err;
  }
}

/**
 * Creates the fence table if it does not exist. Safe to call again, also from several processes at once.
 * Rejects with `GuardArgumentError` for a bad table name, or with the driver's error.
 */
export async function ensureFenceTable(db: Queryable, options: TableOptions = {}): Promise<void> {
  const table = checkTable(options.table);
  try {
    await run(db, fenceTableSql(table), []);
  } catch (err) {
    // Two concurrent CREATE TABLE IF NOT EXISTS can collide on the catalog; the loser finds it made.
    const code = (err as { code?: unknown }).code;
    if (code !== "23505" && code !== "42P07") throw err;
  }
}

/** The highest token fence `name` has accepted, or `null` if it has none (never used, or reset). */
export async function fenceMax(
  db: Queryable,
  name: string,
  options: TableOptions = {},
): Promise<bigint | null> {
  const table = checkTable(options.table);
  const rows = rowsOf(
    await run(
      db,
      `SELECT max_token::text AS max_token FROM ${table} WHERE name = $1`,
      [checkFenceName(name)],
      table,
    ),
  );
  const text = (rows[0] as { max_token?: unknown } | undefined)?.max_token;
  return typeof text === "string" ? BigInt(text) : null;
}

/**
 * Forgets fence `name`, so the next token of any value is accepted as its first: the operator's way out
 * when a fence holds a token no legitimate holder will reach (one from another lock service, say).
 * Dangerous: until a newer holder writes, a stale holder's late write is accepted again. Resolves to the
 * max it had, or `null` if there was no such fence. A second call resolves to `null`.
 */
export async function resetFence(
  db: Queryable,
  name: string,
  options: TableOptions = {},
): Promise<bigint | null> {
  const table = checkTable(options.table);
  const rows = rowsOf(
    await run(
      db,
      `DELETE FROM ${table} WHERE name = $1 RETURNING max_token::text AS max_token`,
      [checkFenceName(name)],
      table,
    ),
  );
  const text = (rows[0] as { max_token?: unknown } | undefined)?.max_token;
  return typeof text === "string" ? BigInt(text) : null;
}
