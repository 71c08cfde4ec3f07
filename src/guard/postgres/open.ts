/**
 * Opening a guarded transaction on one connection: BEGIN and the fence check in one round trip, with the
 * check a statement the connection has prepared, so the server neither parses nor plans it again. Two
 * statements, picked by what this process last saw of the fence: a holder whose token is the fence's max
 * already (every unit of work after its first) only locks the row, writing nothing else; a token above it
 * (a new holder's first unit, or a fence this process has not seen) raises the row in the same statement.
 * Either statement is correct for any token; the pick only spares work. `npm run bench:fence` measures it.
 */
import { createHash } from "node:crypto";
import type { FenceArgs } from "../args.js";
import { FenceTableMissingError, StaleTokenError } from "../errors.js";
import { beginAndCheckSql, nameLiteral, raiseSql, settleCheck } from "./check.js";
import { rowsOf } from "./query.js";

/** What `openGuarded` needs of a connection: `pg`'s `query`, which answers a string of statements with a list. */
export interface SqlConnection {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * Per connection and fence table: `prepared` once its statements are prepared, `inline` once prepared
 * statements would not stay (a pooler that moves the session between server connections); then the
 * connection sends the one-statement check of check.ts instead. A connection that ends takes its entry.
 */
const states = new WeakMap<object, Map<string, "prepared" | "inline">>();

/**
 * The max this process last saw per table and fence (whatever the database: it is a hint for the pick,
 * never for the rule, and a wrong one costs a round trip).
 */
const seen = new Map<string, bigint>();
/** Bound on `seen`; past it the hints start over, which costs a few row writes and nothing else. */
const MAX_SEEN = 10_000;

/** The key of a fence in `seen`. */
function fenceKey(args: Required<FenceArgs>): string {
  return `${args.table}\0${args.fence}`;
}

function remember(key: string, max: bigint): void {
  if (seen.size >= MAX_SEEN && !seen.has(key)) seen.clear();
  seen.set(key, max);
}

// SQLSTATEs: a prepared statement of that name exists already / does not exist.
const DUPLICATE_PREPARED = "42P05";
const MISSING_PREPARED = "26000";

const names = new Map<string, { lock: string; raise: string }>();

/** The prepared statements' names on a connection: one pair per fence table, versioned with their text. */
function statementNames(table: string): { lock: string; raise: string } {
  let pair = names.get(table);
  if (pair === undefined) {
    const id = createHash("sha256").update(table).digest("hex").slice(0, 16);
    pair = { lock: `fencelock_lock_v1_${id}`, raise: `fencelock_raise_v1_${id}` };
    names.set(table, pair);
  }
  return pair;
}

/**
 * FOR NO KEY UPDATE conflicts with itself and with the locks of the raise (INSERT ... ON CONFLICT DO
 * UPDATE), of `resetFence` (DELETE) and of the UPDATE below, so holders of one fence take turns on its row.
 * Under READ COMMITTED a holder that waited for the lock reads the row as its last holder committed it; under
 * REPEATABLE READ and SERIALIZABLE a row changed since the snapshot is a serialization failure.
 */
function lockSql(table: string): string {
  return `SELECT max_token::text AS max_token FROM ${table} WHERE name = $1 FOR NO KEY UPDATE`;
}

function errorCode(err: unknown): unknown {
  return (err as { code?: unknown } | null)?.code;
}

/** The last statement's rows of a string of statements (`pg` answers one result, or a list of them). */
function lastRows(result: unknown): unknown[] {
  const results = Array.isArray(result) ? result : [result];
  return rowsOf(results[results.length - 1]);
}

/**
 * Sends `begin` and the fence check on `conn`, which must not be in a transaction, and resolves once the
 * transaction is open and the fence row holds `args.token` under this transaction's lock. Rejects with
 * `StaleTokenError` if the fence has seen a higher token, `FenceTableMissingError` without the table, or
 * the driver's error; the transaction is then open (and failed) unless the error was the connection's
 * loss: the caller rolls it back. `args` must already be checked.
 */
export async function openGuarded(
  conn: SqlConnection,
  begin: string,
  args: Required<FenceArgs>,
): Promise<void> {
  let byTable = states.get(conn);
  if (byTable === undefined) {
    byTable = new Map();
    states.set(conn, byTable);
  }
  const { lock, raise } = statementNames(args.table);
  const key = fenceKey(args);
  const hint = seen.get(key);
  const raising = hint === undefined || args.token > hint;
  const name = nameLiteral(args.fence);
  const execute = raising
    ? `${begin}; EXECUTE ${raise}(${name}, ${args.token})`
    : `${begin}; EXECUTE ${lock}(${name})`;
  // Bounded: at most a prepare, a re-prepare after a statement vanished, then the inline check.
  for (let attempt = 0; attempt < 3; attempt++) {
    const state = byTable.get(args.table);
    if (state === "inline") return openInline(conn, begin, args);
    const sql =
      state === "prepared"
        ? execute
        : `PREPARE ${lock}(text) AS ${lockSql(args.table)}; PREPARE ${raise}(text, bigint) AS ${raiseSql(args.table, "$1", "$2")}; ${execute}`;
    let rows: unknown[];
    try {
      rows = lastRows(await conn.query(sql));
    } catch (err) {
      const code = errorCode(err);
      if (code === "42P01") throw new FenceTableMissingError(args.table, { cause: err });
      if (code === DUPLICATE_PREPARED) {
        // PREPARE came first and failed, so nothing else ran: the connection is outside a transaction. The
        // names carry the statements' version and table, so they are ours, from a call that then failed.
        byTable.set(args.table, "prepared");
        continue;
      }
      if (code === MISSING_PREPARED) {
        // Someone ran DEALLOCATE or DISCARD ALL, or a pooler moved the session. BEGIN ran: end it first.
        await conn.query("ROLLBACK");
        byTable.delete(args.table);
        continue;
      }
      throw err;
    }
    // PREPARE is not transactional: the statements stay prepared whatever happens to this transaction.
    byTable.set(args.table, "prepared");
    if (raising) {
      await settleCheck((sql, params) => conn.query(sql, params), args, rows).catch((err: unknown) => {
        if (err instanceof StaleTokenError) remember(key, err.maxToken);
        throw err;
      });
      remember(key, args.token);
      return;
    }
    return settleLocked(conn, args, rows, key, hint);
  }
  // The statements came and went three times: a pooler that moves sessions; stop preparing on this connection.
  byTable.set(args.table, "inline");
  return openInline(conn, begin, args);
}

/** The one-statement check of check.ts, for connections that cannot keep a prepared statement. */
async function openInline(conn: SqlConnection, begin: string, args: Required<FenceArgs>): Promise<void> {
  const rows = await conn.query(beginAndCheckSql(begin, args)).catch((err: unknown) => {
    throw errorCode(err) === "42P01" ? new FenceTableMissingError(args.table, { cause: err }) : err;
  });
  await settleCheck((sql, params) => conn.query(sql, params), args, lastRows(rows));
}

/**
 * What the locked row says: equal passes with nothing written; a higher max refuses; a lower one (the hint
 * was out of date: a reset) is raised to the token, with a plain UPDATE as the row is locked; no row (a
 * reset) takes the raise, which inserts it or, if a concurrent holder inserted it first, waits and checks.
 */
function settleLocked(
  conn: SqlConnection,
  args: Required<FenceArgs>,
  rows: unknown[],
  key: string,
  hint: bigint | undefined,
): Promise<void> | undefined {
  const max = (rows[0] as { max_token?: unknown } | undefined)?.max_token;
  if (typeof max !== "string") return insertAfterReset(conn, args, key);
  const current = BigInt(max);
  // The common case, the same holder again: nothing to write, nothing new to remember, no promise to make.
  if (current === args.token && current === hint) return undefined;
  remember(key, current);
  if (current === args.token) return undefined;
  if (current > args.token) throw new StaleTokenError(args.token, current, args.fence);
  return raiseLocked(conn, args, key);
}

/** The fence row is gone (a reset): insert it, or wait for and check a concurrent holder's insert. */
async function insertAfterReset(conn: SqlConnection, args: Required<FenceArgs>, key: string): Promise<void> {
  seen.delete(key);
  const raised = await conn.query(raiseSql(args.table, "$1", "$2"), [args.fence, args.token.toString()]);
  await settleCheck((sql, params) => conn.query(sql, params), args, rowsOf(raised));
}

/** The locked row's max is below the token (the fence was reset and raised by a lower one): raise it. */
async function raiseLocked(conn: SqlConnection, args: Required<FenceArgs>, key: string): Promise<void> {
  await conn.query(`UPDATE ${args.table} SET max_token = $2::bigint, updated_at = now() WHERE name = $1`, [
    args.fence,
    args.token.toString(),
  ]);
  remember(key, args.token);
}
