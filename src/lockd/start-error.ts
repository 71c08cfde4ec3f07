/**
 * The error of a lockd that cannot start, in a module of its own: the thread that hosts lockd's worker
 * needs it, and importing it from errors.ts would load gRPC into that thread too (about 12 MB).
 */
import { FencelockError } from "../shared/errors.js";

/** The lockd server could not start (bad address, port in use, unusable data directory). */
export class LockdStartError extends FencelockError<"LOCKD_START"> {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LOCKD_START", message, options);
  }
}
