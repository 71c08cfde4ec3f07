/**
 * Errors the storage client throws. Every one is a `StorageError` with a stable `code`: the server's
 * registry code when the server refused the request, or one of the client's own codes below.
 */
import { FencelockError } from "../shared/errors.js";
import { PROBLEMS, type ProblemCode } from "./registry.js";

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
  | "SEED_REFUSED"
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

  /**
   * The error for a refusal as the server worded it: its `code` if it is one of the registry's, else
   * `HTTP_<status>` with the unknown code kept in the detail (a newer server may have more codes).
   */
  static fromReply(code: unknown, status: number, detail: string): StorageRequestError {
    const known = PROBLEMS.find((p) => p.code === code)?.code;
    if (known) return new StorageRequestError(known, status, detail);
    return new StorageRequestError(
      `HTTP_${status}`,
      status,
      typeof code === "string" ? `${code}: ${detail}` : detail,
    );
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
 * is not this protocol (`code` "STORAGE_UNAVAILABLE"); `cause` is the underlying error, `status` the
 * HTTP status of an answer that was not this protocol.
 */
export class StorageUnavailableError extends StorageError {
  constructor(message: string, cause?: unknown, status?: number) {
    super("STORAGE_UNAVAILABLE", message, { cause, status });
  }
}

/**
 * A storage that speaks the seed's protocol (etcd's contrib/lock storage) refused a write with its own
 * `err` text and no fencelock code (`code` "SEED_REFUSED"): that storage refuses any version other than
 * the one it holds, the later holder's included.
 */
export class SeedRefusedError extends StorageError {
  constructor(
    readonly err: string,
    status: number,
  ) {
    super("SEED_REFUSED", `the seed-protocol storage refused the write: ${err}`, { status });
  }
}
