/**
 * The rule of docs/design.md §3 as one PostgreSQL statement: raise the fence to the token if the token is at
 * least its max (equal passes), taking the fence row's lock until the transaction ends, so concurrent
 * holders of one fence serialize on it.
 */
import { checkFenceArgs, type FenceArgs } from "../args.js";
import { FenceTableMissingError, StaleTokenError } from "../errors.js";
import { guardErrorOf } from "./pg-errors.js";
import { type Query, rowsOf } from "./query.js";

// ON CONFLICT DO UPDATE locks the conflicting row even when its WHERE is false, and under READ COMMITTED it
// re-checks the WHERE against the newest committed row after waiting for that lock: a token that lost the
// race to a higher one finds the higher max, never the one it read before waiting.
function raiseSql(table: string): string {
  return `INSERT INTO ${table} AS f (name, max_token) VALUES ($1, $2::bigint)
ON CONFLICT (name) DO UPDATE SET max_token = EXCLUDED.max_token, updated_at = now()
WHERE f.max_token <= EXCLUDED.max_token
RETURNING f.max_token::text AS max_token`;
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
  const { fence, token, table } = checkFenceArgs(args);
  try {
    if (rowsOf(await query(raiseSql(table), [fence, token.toString()])).length === 1) return;
    // A fresh statement: under READ COMMITTED it sees the max that beat this token.
    const rows = rowsOf(
      await query(`SELECT max_token::text AS max_token FROM ${table} WHERE name = $1`, [fence]),
    );
    const max = (rows[0] as { max_token?: unknown } | undefined)?.max_token;
    throw new StaleTokenError(token, typeof max === "string" ? BigInt(max) : token, fence);
  } catch (err) {
    if ((err as { code?: unknown }).code === "42P01") throw new FenceTableMissingError(table, { cause: err });
    throw guardErrorOf(err, "work");
  }
}
