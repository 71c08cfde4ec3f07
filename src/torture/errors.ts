/** Errors of the torture harness. */
import { FencelockError } from "../shared/errors.js";

/** A torture option is missing, malformed or out of range; nothing was started. */
export class TortureConfigError extends FencelockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TORTURE_BAD_CONFIG", message, options);
  }
}

/** The harness itself failed (a server would not start or restart, a history line was unreadable). */
export class TortureError extends FencelockError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TORTURE_FAILED", message, options);
  }
}
