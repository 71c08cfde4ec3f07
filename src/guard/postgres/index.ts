/**
 * Fencing guards for PostgreSQL (`fencelock/postgres`): a fence row next to the guarded data, checked in the
 * same transaction as the writes, so a stale lock holder's work is rolled back by the database itself. Works
 * with `pg` (node-postgres) pools and clients, and with any driver through `checkFence(query, ...)`.
 */

export { FencelockError } from "../../shared/errors.js";
export { type FenceArgs, MAX_FENCE_BYTES } from "../args.js";
export {
  type CommitOutcome,
  DatabaseUnavailableError,
  FenceTableMissingError,
  GuardAbortedError,
  GuardArgumentError,
  GuardError,
  type GuardErrorCode,
  GuardTimeoutError,
  RolledBackError,
  StaleTokenError,
  TransactionConflictError,
} from "../errors.js";
export { checkFence } from "./check.js";
export type { Query } from "./query.js";
export {
  ensureFenceTable,
  fenceMax,
  fenceTableSql,
  type Queryable,
  resetFence,
  type TableOptions,
} from "./schema.js";
export {
  type FenceContext,
  type IsolationLevel,
  type PgClientLike,
  type PgPoolClientLike,
  type PgPoolLike,
  type TransactionOf,
  type WithFenceOptions,
  withFence,
} from "./with-fence.js";
