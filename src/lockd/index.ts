/**
 * lockd: a durable single-node server for the etcd v3 gRPC subset that locks, leases and watches need.
 */

export { FencelockError } from "../shared/errors.js";
export type { SyncMode } from "./db.js";
export { EtcdError, errors, LockdStartError, LockdStorageError } from "./errors.js";
export { type LockdOptions, type LockdServer, startLockdServer } from "./server.js";
export { API_VERSION, type Log } from "./services.js";
export { type LockdWorker, startLockdWorker } from "./worker-host.js";
