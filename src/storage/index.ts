/**
 * The fenced storage: a key-value server over HTTP that enforces fencing tokens (docs/design.md §3), its typed
 * client, and its errors.
 */

export { FencelockError } from "../shared/errors.js";
export {
  type AuditEntry,
  type CallOptions,
  type FencedCallOptions,
  StorageClient,
  type StorageClientOptions,
} from "./client.js";
export {
  SeedRefusedError,
  StaleTokenError,
  StorageAbortedError,
  StorageArgumentError,
  StorageError,
  type StorageErrorCode,
  StorageRequestError,
  StorageTimeoutError,
  StorageUnavailableError,
} from "./errors.js";
export { DEFAULT_LIMITS, type Limits } from "./input.js";
export { PROBLEMS, type ProblemCode, type ProblemSpec } from "./registry.js";
export { SeedStorageClient } from "./seed-client.js";
export {
  createStorageServer,
  type ListenAddress,
  MAX_AUDIT_LIMIT,
  StorageServer,
  type StorageServerOptions,
} from "./server.js";
export type { StoreOptions } from "./store.js";
export { MAX_TOKEN } from "./token.js";
