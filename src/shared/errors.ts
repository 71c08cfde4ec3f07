/**
 * The base of every error fencelock throws. Callers match on `code`, which is stable across releases;
 * `name` is the class name; `cause` carries the underlying error, if any.
 */
export class FencelockError<C extends string = string> extends Error {
  /** Stable, machine-readable identifier, e.g. `STALE_FENCING_TOKEN`; each part's errors have a union of them. */
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
