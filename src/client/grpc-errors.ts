/**
 * The one place where gRPC statuses and etcd's error messages become typed errors. etcd reports its
 * errors as a gRPC status code plus a fixed message (`etcdserver: …`); the message is what tells, for
 * example, an invalid auth token from a wrong password.
 */
import { status } from "@grpc/grpc-js";
import {
  CallTimeoutError,
  CompactedError,
  EtcdAuthError,
  EtcdError,
  EtcdUnavailableError,
  LeaseNotFoundError,
} from "./errors.js";

/** The shape of an error a grpc-js call fails with. */
interface GrpcFailure {
  code: number;
  details?: string;
  message?: string;
}

function isGrpcFailure(err: unknown): err is GrpcFailure {
  return typeof err === "object" && err !== null && typeof (err as GrpcFailure).code === "number";
}

/** Errors worth trying again on another member: the member is gone, has no leader, or is stopping. */
export function isRetryable(err: unknown): boolean {
  return err instanceof EtcdUnavailableError;
}

/** True when the auth token must be fetched again before retrying. */
export function needsReauth(err: unknown): boolean {
  return err instanceof EtcdAuthError && err.reason === "token";
}

/**
 * Maps a failed call's error to a typed error. `method` and `endpoint` name the call for messages.
 * Errors that are already typed, or not gRPC failures, pass through unchanged.
 */
export function fromGrpc(err: unknown, method: string, endpoint: string): unknown {
  if (!isGrpcFailure(err)) return err;
  // grpc-js appends an empty "Resolution note:" to connection failures; it says nothing.
  const details = (err.details ?? err.message ?? "").replace(/\.? ?Resolution note: ?$/, "");
  const options = { cause: err };
  if (details.includes("requested lease not found")) return new LeaseNotFoundError(options);
  if (details.includes("required revision has been compacted")) return new CompactedError(options);
  if (details.includes("invalid auth token") || details.includes("revision in header is old")) {
    return new EtcdAuthError("token", `${details} (${endpoint})`, options);
  }
  if (details.includes("authentication failed") || details.includes("user name is empty")) {
    return new EtcdAuthError("failed", details, options);
  }
  switch (err.code) {
    case status.UNAVAILABLE:
      return new EtcdUnavailableError(`${method}: ${endpoint} unavailable: ${details}`, endpoint, options);
    case status.DEADLINE_EXCEEDED:
      return new CallTimeoutError(method, endpoint, options);
    case status.PERMISSION_DENIED:
      return new EtcdAuthError("denied", details, options);
    case status.UNAUTHENTICATED:
      return new EtcdAuthError("token", details, options);
    default:
      return new EtcdError(err.code, details, options);
  }
}

/**
 * Why a call never reached a server at all: the connection was refused (nothing listens there), or what
 * answered does not speak gRPC (an HTTP/1.1 server, such as the storage's port). `undefined` otherwise.
 */
export function connectFailure(err: unknown): "refused" | "not-grpc" | undefined {
  if (!isGrpcFailure(err) || err.code !== status.UNAVAILABLE) return undefined;
  const details = err.details ?? err.message ?? "";
  if (/ECONNREFUSED/.test(details)) return "refused";
  if (/Protocol error/.test(details)) return "not-grpc";
  return undefined;
}
