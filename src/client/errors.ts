/**
 * The errors the lock client throws. Each has a stable `code` to match on, its class `name`, and the
 * underlying error in `cause`. Contention is never an error: `tryLock()` resolves to `null`.
 */
import { FencelockError } from "../shared/errors.js";
import { describeHolder, type LockHolder } from "./lock-status.js";

/** Why a session ended. */
export type SessionEndReason = "expired" | "revoked" | "not_found" | "closed";

/**
 * The session's lease is gone, or can no longer be trusted. `reason`: `expired` — the local deadline
 * (send time of the last acknowledged keep-alive + TTL) passed; `revoked` — the server answered a
 * keep-alive saying the lease no longer exists; `not_found` — a request using the lease was refused
 * because the lease does not exist; `closed` — `session.close()` was called.
 */
export class SessionExpiredError extends FencelockError<"SESSION_EXPIRED"> {
  constructor(
    readonly reason: SessionEndReason,
    readonly leaseId: bigint,
    options?: { cause?: unknown },
  ) {
    super("SESSION_EXPIRED", `session ${leaseId.toString(16)} ended: ${reason}`, options);
  }
}

/**
 * `lock()` did not acquire the lock within its `timeoutMs`; its waiter key was removed first. `holder` is
 * who held the lock then (read once more after the timeout, with a short bound; `undefined` if that read
 * failed), and the message names it, saying so when its key has no lease and so never expires by itself.
 */
export class LockTimeoutError extends FencelockError<"LOCK_TIMEOUT"> {
  holder: LockHolder | null | undefined;

  constructor(
    readonly lockName: string,
    readonly timeoutMs: number,
  ) {
    super("LOCK_TIMEOUT", `lock "${lockName}" not acquired within ${timeoutMs} ms`);
  }

  /** @internal Adds who held the lock to the error. */
  heldBy(holder: LockHolder | null): this {
    this.holder = holder;
    this.message += holder ? `; held by ${describeHolder(holder)}` : "; nobody holds it now";
    return this;
  }
}

/** The caller's `AbortSignal` aborted the operation; the signal's reason is the `cause`. */
export class AbortedError extends FencelockError<"ABORTED"> {
  constructor(what: string, reason: unknown) {
    super("ABORTED", `${what} aborted`, { cause: reason });
  }
}

/** The waiter's own key was deleted by someone else while it waited (its session still alive). */
export class LockLostError extends FencelockError<"LOCK_LOST"> {
  constructor(readonly key: string) {
    super("LOCK_LOST", `lock key ${key} was deleted while waiting`);
  }
}

/**
 * A guarded transaction (`lock.txn()`) found that the lock key no longer has this holder's create revision:
 * the lease expired, or the lock was released. Nothing was written.
 */
export class LockNotHeldError extends FencelockError<"LOCK_NOT_HELD"> {
  constructor(
    readonly key: string,
    readonly token: bigint,
  ) {
    super(
      "LOCK_NOT_HELD",
      `lock ${key} (token ${token}) is no longer held; the guarded transaction wrote nothing`,
    );
  }
}

/** The reason `lock.signal` aborts with after `unlock()`. */
export class LockReleasedError extends FencelockError<"LOCK_RELEASED"> {
  constructor(readonly key: string) {
    super("LOCK_RELEASED", `lock ${key} was released`);
  }
}

/** The client (or the session) was closed before or during the call. */
export class ClientClosedError extends FencelockError<"CLIENT_CLOSED"> {
  constructor(what = "client") {
    super("CLIENT_CLOSED", `${what} is closed`);
  }
}

/** A bad argument: nothing was sent and nothing changed. */
export class InvalidArgumentError extends FencelockError<"INVALID_ARGUMENT"> {
  constructor(message: string) {
    super("INVALID_ARGUMENT", message);
  }
}

/**
 * No endpoint could be reached (every member refused, or the one in use stopped answering). `endpoint` is
 * the one that failed last; `tried` every endpoint the call tried.
 */
export class EtcdUnavailableError extends FencelockError<"ETCD_UNAVAILABLE"> {
  readonly tried: readonly string[];

  constructor(
    message: string,
    readonly endpoint: string,
    options?: { cause?: unknown; tried?: readonly string[] },
  ) {
    super("ETCD_UNAVAILABLE", message, options);
    this.tried = options?.tried ?? [endpoint];
  }
}

/** A unary call passed its deadline (`callTimeoutMs`, or what was left of the caller's timeout). */
export class CallTimeoutError extends FencelockError<"CALL_TIMEOUT"> {
  constructor(
    readonly method: string,
    readonly endpoint: string,
    options?: { cause?: unknown },
  ) {
    super("CALL_TIMEOUT", `${method} on ${endpoint} passed its deadline`, options);
  }
}

/**
 * Authentication or authorisation failed. `reason`: `failed` — wrong user name or password;
 * `token` — the auth token is invalid or stale (the client re-authenticates once by itself);
 * `denied` — the user lacks the permission.
 */
export class EtcdAuthError extends FencelockError<"ETCD_AUTH"> {
  constructor(
    readonly reason: "failed" | "token" | "denied",
    message: string,
    options?: { cause?: unknown },
  ) {
    super("ETCD_AUTH", message, options);
  }
}

/** The lease named in a request does not exist (expired or revoked). */
export class LeaseNotFoundError extends FencelockError<"LEASE_NOT_FOUND"> {
  constructor(options?: { cause?: unknown }) {
    super("LEASE_NOT_FOUND", "etcdserver: requested lease not found", options);
  }
}

/** A watch or read asked for a revision that has been compacted away. */
export class CompactedError extends FencelockError<"ETCD_COMPACTED"> {
  constructor(options?: { cause?: unknown }) {
    super("ETCD_COMPACTED", "etcdserver: mvcc: required revision has been compacted", options);
  }
}

/** Any other error from the server; `grpcCode` is the gRPC status code, `details` its message. */
export class EtcdError extends FencelockError<"ETCD_ERROR"> {
  constructor(
    readonly grpcCode: number,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super("ETCD_ERROR", details || `gRPC status ${grpcCode}`, options);
  }
}

/** `election.leader()` found no candidate: nobody leads the election now. */
export class NoLeaderError extends FencelockError<"NO_LEADER"> {
  constructor(readonly election: string) {
    super("NO_LEADER", `election "${election}" has no leader`);
  }
}

/**
 * The candidate's key no longer has this leadership's create revision (its token): the lease ended, the
 * leader resigned, or someone deleted the key. `proclaim()` wrote nothing; `leadership.signal` aborts with it.
 */
export class NotLeaderError extends FencelockError<"NOT_LEADER"> {
  constructor(
    readonly key: string,
    readonly token: bigint,
  ) {
    super("NOT_LEADER", `${key} (token ${token}) no longer leads; nothing was written`);
  }
}

/** The reason `leadership.signal` aborts with after `resign()`. */
export class ResignedError extends FencelockError<"RESIGNED"> {
  constructor(readonly key: string) {
    super("RESIGNED", `${key} resigned`);
  }
}

/** Every `code` a lock client error can carry. */
export type ClientErrorCode =
  | "SESSION_EXPIRED"
  | "LOCK_TIMEOUT"
  | "ABORTED"
  | "LOCK_LOST"
  | "LOCK_NOT_HELD"
  | "LOCK_RELEASED"
  | "CLIENT_CLOSED"
  | "INVALID_ARGUMENT"
  | "ETCD_UNAVAILABLE"
  | "CALL_TIMEOUT"
  | "ETCD_AUTH"
  | "LEASE_NOT_FOUND"
  | "ETCD_COMPACTED"
  | "ETCD_ERROR"
  | "NO_LEADER"
  | "NOT_LEADER"
  | "RESIGNED";
