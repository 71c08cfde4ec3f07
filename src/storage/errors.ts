/**
 * Errors the storage client throws. Every one is a `StorageError` with a stable `code`: the server's
 * registry code when the server refused the request, or one of the client's own codes below.
 */
import { FencelockError } from "../shared/errors.js";
import type { ProblemCode } from "./registry.js";

/**
 * Every `code` a storage client error can carry: the server's registry codes, `HTTP_<status>` for an
 * answer without a known code, and the client's own.
 */
export type StorageErrorCode =
  | ProblemCode
  | `HTTP_${number}`
  | "STORAGE_TIMEOUT"
  | "ABORTED"
  | "STORAGE_UNAVAILABLE"
  | "INVALID_ARGUMENT";

/** Base of every storage client error. `status` is the HTTP status when the server answered. */
export class StorageError extends FencelockError<StorageErrorCode> {
  readonly status: number | undefined;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}

/**
 * The server refused a token lower than the highest its fence has seen (HTTP 409). Nothing was written
 * or read; `maxToken` is the fence's current max.
 */
export class StaleTokenError extends StorageError {
  constructor(
    readonly token: bigint,
    readonly maxToken: bigint,
    readonly fence: string,
  ) {
    super("STALE_FENCING_TOKEN", `stale fencing token ${token} < max ${maxToken} of fence "${fence}"`, {
      status: 409,
    });
  }
}

/**
 * The server refused the request for another reason; `code` is its registry code (`BAD_REQUEST`,
 * `TOKEN_REQUIRED`, `UNAUTHORIZED`, `PAYLOAD_TOO_LARGE`, …) and `detail` its explanation.
 */
export class StorageRequestError extends StorageError {
  constructor(
    code: StorageErrorCode,
    status: number,
    readonly detail: string,
  ) {
    super(code, `storage refused the request (${status} ${code}): ${detail}`, { status });
  }
}

/** A bad argument to the client (its URL, a token): nothing was sent (`code` "INVALID_ARGUMENT"). */
export class StorageArgumentError extends StorageError {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/** No answer within the timeout (`code` "STORAGE_TIMEOUT"); the request may or may not have been applied. */
export class StorageTimeoutError extends StorageError {
  constructor(message: string) {
    super("STORAGE_TIMEOUT", message);
  }
}

/** The caller's signal aborted the call (`code` "ABORTED"); `cause` is the signal's reason. */
export class StorageAbortedError extends StorageError {
  constructor(message: string, cause: unknown) {
    super("ABORTED", message, { cause });
  }
}

/**
 * The server could not be reached, or the connection failed mid-request, or it answered something that
 * is not this protocol (`code` "STORAGE_UNAVAILABLE"); `cause` is the underlying error.
 */
export class StorageUnavailableError extends StorageError {
  constructor(message: string, cause?: unknown) {
    super("STORAGE_UNAVAILABLE", message, { cause });
  }
}
