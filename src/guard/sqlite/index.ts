/**
 * Fencing guards for SQLite (`fencelock/sqlite`) through better-sqlite3: a fence row next to the guarded
 * data, checked in the same `BEGIN IMMEDIATE` transaction as the writes, so a stale lock holder's work is
 * rolled back by the database itself.
 */

export { FencelockError } from "../../shared/errors.js";
export { type FenceArgs, MAX_FENCE_BYTES } from "../args.js";
export {
  FenceTableMissingError,
  GuardArgumentError,
  GuardError,
  type GuardErrorCode,
  StaleTokenError,
  TransactionConflictError,
} from "../errors.js";
export {
  checkFence,
  ensureFenceTable,
  fenceMax,
  fenceTableSql,
  resetFence,
  type TableOptions,
  withFence,
} from "./guard.js";
