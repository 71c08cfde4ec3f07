/**
 * What a PostgreSQL driver's error means to a guarded transaction, decided in one place: SQLSTATE codes
 * first (`pg` and postgres.js both carry them in `code`), then Node's socket errors, then the few messages
 * `pg` gives connection loss without a code.
 */
import { DatabaseUnavailableError, GuardError, TransactionConflictError } from "../errors.js";

const CONFLICT = new Set(["40001", "40P01"]);
// Class 08 is connection exceptions; 57P01-03 are the server shutting the backend down (pg_terminate_backend,
// a restart) or not accepting connections yet.
const GONE = /^(08...|57P0[123])$/;
const SOCKET = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTFOUND"]);
const GONE_MESSAGE =
  /Connection terminated|connection error|not queryable|Cannot use a pool after calling end|Client has already been connected|timeout exceeded when trying to connect/i;

/** Whether `err` means the connection is gone (so nothing more can be sent on it). */
export function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && (GONE.test(code) || SOCKET.has(code))) return true;
  return err instanceof Error && GONE_MESSAGE.test(err.message);
}

/**
 * The error a caller should see for `err`, met while the transaction was in the state `during`: a
 * conflict becomes `TransactionConflictError`, a lost connection `DatabaseUnavailableError` (its outcome in
 * doubt only when lost during COMMIT); guard errors and the caller's own errors pass unchanged.
 */
export function guardErrorOf(err: unknown, during: "connect" | "work" | "commit"): unknown {
  if (err instanceof GuardError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && CONFLICT.has(code)) {
    return new TransactionConflictError(
      `PostgreSQL refused the transaction (${code}: ${(err as Error).message}); nothing was written, run it again`,
      { cause: err },
    );
  }
  if (isConnectionLoss(err)) {
    const message = (err as Error).message;
    if (during === "commit") {
      return new DatabaseUnavailableError(
        `the connection was lost during COMMIT (${message}): the transaction may or may not have committed`,
        "unknown",
        { cause: err },
      );
    }
    const what = during === "connect" ? "could not connect to PostgreSQL" : "the connection was lost";
    return new DatabaseUnavailableError(`${what} (${message}); nothing was written`, "rolled-back", {
      cause: err,
    });
  }
  return err;
}
