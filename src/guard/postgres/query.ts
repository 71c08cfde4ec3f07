/** The driver-neutral way to run SQL: a function of SQL text and parameters, as every driver can offer. */

/**
 * Runs one SQL statement with `$1`-style parameters and resolves to its rows: an array of row objects, or
 * an object with a `rows` array (`pg`, Kysely's `executeQuery`). Integers come back as text here, because
 * the guard selects them as `::text`.
 */
export type Query = (sql: string, params: unknown[]) => Promise<unknown>;

/** The rows of a driver's result, whether it resolved to an array or to `{ rows }`. */
export function rowsOf(result: unknown): unknown[] {
  if (Array.isArray(result)) return result;
  const rows = (result as { rows?: unknown } | null | undefined)?.rows;
  if (Array.isArray(rows)) return rows;
  throw new TypeError("the query function must resolve to an array of rows or to { rows: [...] }");
}
