/**
 * etcd's gRPC errors as lockd answers them: the same status codes and message strings as etcd 3.4, so
 * clients that recognise etcd errors (etcdctl, the Go client, the `etcd3` package, ours) recognise lockd's.
 */
import { status } from "@grpc/grpc-js";
import { FencelockError } from "../shared/errors.js";

export { LockdStartError } from "./start-error.js";

/** An error lockd returns to a client as a gRPC status: `grpcCode` and etcd's message as details. */
export class EtcdError extends FencelockError {
  /** The gRPC status code sent to the client. */
  readonly grpcCode: status;

  constructor(code: string, grpcCode: status, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.grpcCode = grpcCode;
  }
}

/** lockd could not open, read or write its database. */
export class LockdStorageError extends FencelockError<"LOCKD_STORAGE"> {
  constructor(message: string, options?: { cause?: unknown }) {
    super("LOCKD_STORAGE", message, options);
  }
}

type ErrorFactory = () => EtcdError;

function def(code: string, grpcCode: status, message: string): ErrorFactory {
  return () => new EtcdError(code, grpcCode, message);
}

/**
 * The registry of every error lockd sends, by stable code. The messages are etcd's, byte for byte; the
 * conformance suite compares them with a real etcd.
 */
export const errors = {
  emptyKey: def("EMPTY_KEY", status.INVALID_ARGUMENT, "etcdserver: key is not provided"),
  keyNotFound: def("KEY_NOT_FOUND", status.INVALID_ARGUMENT, "etcdserver: key not found"),
  valueProvided: def("VALUE_PROVIDED", status.INVALID_ARGUMENT, "etcdserver: value is provided"),
  leaseProvided: def("LEASE_PROVIDED", status.INVALID_ARGUMENT, "etcdserver: lease is provided"),
  tooManyOps: def("TOO_MANY_OPS", status.INVALID_ARGUMENT, "etcdserver: too many operations in txn request"),
  duplicateKey: def(
    "DUPLICATE_KEY",
    status.INVALID_ARGUMENT,
    "etcdserver: duplicate key given in txn request",
  ),
  requestTooLarge: def("REQUEST_TOO_LARGE", status.INVALID_ARGUMENT, "etcdserver: request is too large"),
  compacted: def("COMPACTED", status.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted"),
  futureRev: def(
    "FUTURE_REV",
    status.OUT_OF_RANGE,
    "etcdserver: mvcc: required revision is a future revision",
  ),
  noSpace: def("NO_SPACE", status.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"),
  leaseNotFound: def("LEASE_NOT_FOUND", status.NOT_FOUND, "etcdserver: requested lease not found"),
  leaseExists: def("LEASE_EXIST", status.FAILED_PRECONDITION, "etcdserver: lease already exists"),
  leaseTTLTooLarge: def("LEASE_TTL_TOO_LARGE", status.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
  leaseIdsExhausted: def(
    "LEASE_IDS_EXHAUSTED",
    status.RESOURCE_EXHAUSTED,
    "lockd: no lease ID is left above the highest granted; grant with an explicit ID",
  ),
  authNotEnabled: def(
    "AUTH_NOT_ENABLED",
    status.FAILED_PRECONDITION,
    "etcdserver: authentication is not enabled",
  ),
  stopped: def("STOPPED", status.UNAVAILABLE, "etcdserver: server stopped"),
  invalidArgument: (detail: string) =>
    new EtcdError("INVALID_ARGUMENT", status.INVALID_ARGUMENT, `lockd: ${detail}`),
  storageFailed: (cause: unknown) =>
    new EtcdError("STORAGE_FAILED", status.UNAVAILABLE, "lockd: the write could not be committed", { cause }),
} as const;
