/**
 * fencelock's lock client: sessions (one lease, kept alive, with a loss signal) and, on them, fair mutexes,
 * leader elections, read-write locks and semaphores whose holders get fencing tokens. Speaks the etcd v3
 * gRPC API, so it runs against etcd and against lockd.
 */
import "./dispose.js";

export { FencelockError } from "../shared/errors.js";
export {
  type ConnectOptions,
  connect,
  DEFAULT_ENDPOINTS,
  LockClient,
  type LockContext,
  type WithLockOptions,
} from "./client.js";
export { LOCK_CHANNEL, type LockEvent } from "./diagnostics.js";
export { type CampaignOptions, Election, type LeaderOptions } from "./election.js";
export {
  AbortedError,
  CallTimeoutError,
  ClientClosedError,
  type ClientErrorCode,
  CompactedError,
  EtcdAuthError,
  EtcdError,
  EtcdUnavailableError,
  InvalidArgumentError,
  LeaseNotFoundError,
  LockLostError,
  LockNotHeldError,
  LockReleasedError,
  LockTimeoutError,
  NoLeaderError,
  NotLeaderError,
  ResignedError,
  type SessionEndReason,
  SessionExpiredError,
} from "./errors.js";
export {
  type Bytes,
  type GuardedKeyValue,
  type GuardedOp,
  type GuardedOpResult,
  type GuardedTxnResult,
  MAX_GUARDED_OPS,
} from "./guarded-txn.js";
export { lockKey, lockPrefix } from "./keys.js";
export { Leadership } from "./leadership.js";
export { Lock } from "./lock.js";
export type { LockHolder, LockStatus } from "./lock-status.js";
export { type LockOptions, Mutex } from "./mutex.js";
export type { LeaderInfo } from "./observe.js";
export { RWLock, type RWLockOptions } from "./rwlock.js";
export { Semaphore, type SemaphoreOptions } from "./semaphore.js";
export { Session, type SessionOptions } from "./session.js";
export type { AuthOptions, TlsOptions } from "./transport.js";
