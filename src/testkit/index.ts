/**
 * The test kit: launchers for fencelock's servers, etcd and PostgreSQL, each on free loopback ports,
 * ready-probed, and always cleaned up. Used by tests, the demo, torture and the benchmarks.
 */

export { FencelockError } from "../shared/errors.js";
export {
  type EtcdCluster,
  type EtcdClusterOptions,
  type EtcdMember,
  etcdStatus,
  startEtcdCluster,
} from "./etcd.js";
export { fillKeys } from "./fill.js";
export { type LockdInstance, type LockdLaunchOptions, startLockd } from "./lockd.js";
export { ProcessMemoryError, processMemoryMb } from "./memory.js";
export {
  type PostgresConnectionConfig,
  type PostgresHandle,
  type PostgresOptions,
  startPostgres,
} from "./postgres.js";
export {
  Child,
  CLI_PATH,
  freePort,
  LaunchError,
  type LaunchOptions,
  launch,
  listeningLine,
  type TempDir,
  tempDir,
} from "./process.js";
export { type StorageHandle, type StorageOptions, startStorage } from "./storage.js";
