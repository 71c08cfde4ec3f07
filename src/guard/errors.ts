/**
 * The errors the database guards throw. Each is a `GuardError` with a stable `code`; the driver's own
 * error, if any, is the `cause`. A stale token is a `StaleTokenError`, the same `code` as the storage's.
 */
import { FencelockError } from "../shared/errors.js";

/** Every `code` a guard error can carry. */
export type GuardErrorCode =
  | "STALE_FENCING_TOKEN"
  | "TRANSACTION_CONFLICT"
  | "ROLLED_BACK"
  | "DATABASE_UNAVAILABLE"
  | "INVALID_ARGUMENT"
  | "FENCE_TABLE_MISSING"
  | "ABORTED"
  | "TIMEOUT";

/** Base of every guard error. */
export class GuardError extends FencelockError<GuardErrorCode> {
  constructor(code: GuardErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The fence has seen a higher token than this one: a newer holder exists. The whole transaction was rolled
 * back (with `withFence`), so none of the caller's statements took effect.
 */
export class StaleTokenError extends GuardError {
  constructor(
    readonly token: bigint,
    readonly maxToken: bigint,
    readonly fence: string,
  ) {
    super("STALE_FENCING_TOKEN", `stale fencing token ${token} < max ${maxToken} of fence "${fence}"`);
  }
}

/**
 * The database refused the transaction because it ran concurrently with another one (a serialization
 * failure or deadlock in PostgreSQL, a busy database in SQLite). Nothing was written; running the whole unit
 * of work again is safe, and may then meet a `StaleTokenError` if a newer holder won.
 */
export class TransactionConflictError extends GuardError {
  /** Always true: the unit of work may be run again. */
  readonly retryable = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super("TRANSACTION_CONFLICT", message, options);
  }
}

/**
 * The transaction was already aborted by an earlier failed statement (one the caller caught), so COMMIT
 * rolled it back. Nothing was written.
 */
export class RolledBackError extends GuardError {
  constructor(message: string) {
    super("ROLLED_BACK", message);
  }
}

/** Whether a lost connection left the transaction rolled back for sure, or in doubt (lost during COMMIT). */
export type CommitOutcome = "rolled-back" | "unknown";

/**
 * The database could not be reached, or the connection was lost (the server restarted, the backend was
 * terminated, the pool was closed). `outcome` says whether the transaction is known to be rolled back or was
 * lost during COMMIT, when only the database knows.
 */
export class DatabaseUnavailableError extends GuardError {
  constructor(
    message: string,
    readonly outcome: CommitOutcome,
    options?: { cause?: unknown },
  ) {
    super("DATABASE_UNAVAILABLE", message, options);
  }
}

/** A bad argument (token, fence name, table name, handle): nothing was sent and nothing changed. */
export class GuardArgumentError extends GuardError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/**
 * The fence table does not exist in this database: create it with `ensureFenceTable()` or the shipped
 * `sql/*-fences.sql`. Nothing was written.
 */
export class FenceTableMissingError extends GuardError {
  constructor(
    readonly table: string,
    options?: { cause?: unknown },
  ) {
    super(
      "FENCE_TABLE_MISSING",
      `the fence table ${table} does not exist: create it with ensureFenceTable() or the shipped sql/*-fences.sql`,
      options,
    );
  }
}

/** The caller's `AbortSignal` aborted the transaction, which was rolled back; `cause` is the signal's reason. */
export class GuardAbortedError extends GuardError {
  constructor(reason: unknown) {
    super("ABORTED", "the guarded transaction was aborted and rolled back", { cause: reason });
  }
}

/** The guarded transaction did not finish within its `timeoutMs`; it was rolled back. */
export class GuardTimeoutError extends GuardError {
  constructor(readonly timeoutMs: number) {
    super("TIMEOUT", `the guarded transaction did not finish within ${timeoutMs} ms and was rolled back`);
  }
}
