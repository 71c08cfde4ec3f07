/**
 * The rule of docs/design.md §3 as one PostgreSQL statement: raise the fence to the token if the token is at
 * least its max (equal passes), taking the fence row's lock until the transaction ends, so concurrent
 * holders of one fence serialize on it.
 */
import { checkFenceArgs, type FenceArgs } from "../args.js";
import { FenceTableMissingError, StaleTokenError } from "../errors.js";
import { guardErrorOf } from "./pg-errors.js";
import { type Query, rowsOf } from "./query.js";

/**
 * The raise statement on `table`, with `name` and `token` SQL expressions (parameters or literals).
 * ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is false, and under READ COMMITTED it
 * re-checks the WHERE against the newest committed row after waiting for that lock: a token that lost the
 * race to a higher one finds the higher max, never the one it read before waiting.
 */
export function raiseSql(table: string, name: string, token: string): string {
  return `INSERT INTO ${table} AS f (name, max_token) VALUES (${name}, ${token}::bigint)
ON CONFLICT (name) DO UPDATE SET max_token = EXCLUDED.max_token, updated_at = now()
WHERE f.max_token <= EXCLUDED.max_token
RETURNING f.max_token::text AS max_token`;
}

/**
 * `begin` and the check as one simple-protocol query string, so opening a guarded transaction costs one
 * round trip, not two. Such a string cannot carry parameters: the token goes in as its decimal digits, the
 * name as `nameLiteral` writes it; neither can be read as SQL. `args` must already be checked.
 */
export function beginAndCheckSql(begin: string, args: Required<FenceArgs>): string {
  return `${begin}; ${raiseSql(args.table, nameLiteral(args.fence), args.token.toString())}`;
}

/**
 * `fence` as an SQL expression no name can break out of. A name without `$` goes in dollar-quoted, which
 * the server takes byte for byte (no escapes, whatever `standard_conforming_strings` says) up to the closing
 * tag it cannot contain; any other as the hex of its UTF-8 bytes, decoded by the server (a little more work
 * for the server per statement, `npm run bench:fence`).
 */
export function nameLiteral(fence: string): string {
  if (!fence.includes("$")) return `$fencelock$${fence}$fencelock$`;
  return `convert_from(decode('${Buffer.from(fence, "utf8").toString("hex")}', 'hex'), 'UTF8')`;
}

/**
 * What the check's result says, given its rows: resolves if the fence took the token, rejects with
 * `StaleTokenError` (reading, in a fresh statement, the max that beat the token) otherwise.
 */
export async function settleCheck(query: Query, args: Required<FenceArgs>, rows: unknown[]): Promise<void> {
  if (rows.length === 1) return;
  // A fresh statement: under READ COMMITTED it sees the max that beat this token.
  const found = rowsOf(
    await query(`SELECT max_token::text AS max_token FROM ${args.table} WHERE name = $1`, [args.fence]),
  );
  const max = (found[0] as { max_token?: unknown } | undefined)?.max_token;
  throw new StaleTokenError(args.token, typeof max === "string" ? BigInt(max) : args.token, args.fence);
}

/**
 * Applies the fence inside a transaction the caller has already opened (with any driver: pass its `query`
 * as a function of SQL and parameters). Resolves once the fence row holds this token and is locked by the
 * transaction; then run the guarded statements and commit. Rejects with `StaleTokenError` if the fence has
 * seen a higher token: the caller must then roll back (most drivers' transaction helpers do when the
 * function throws). Rejects with `GuardArgumentError` before sending anything for a bad token or name, with
 * `TransactionConflictError` on a serialization failure (retry the whole transaction), or with the driver's
 * error. Outside a transaction the check commits on its own and guards nothing that follows: always call it
 * first inside one. A second call in the same transaction with the same token passes (equal tokens pass).
 */
export async function checkFence(query: Query, args: FenceArgs): Promise<void> {
  const checked = checkFenceArgs(args);
  try {
    const rows = rowsOf(
      await query(raiseSql(checked.table, "$1", "$2"), [checked.fence, checked.token.toString()]),
    );
    await settleCheck(query, checked, rows);
  } catch (err) {
    if ((err as { code?: unknown }).code === "42P01")
      throw new FenceTableMissingError(checked.table, { cause: err });
    throw guardErrorOf(err, "work");
  }
}
