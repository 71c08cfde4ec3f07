/**
 * The torture harness: fault injection across real processes (workers, lock service, storage, a proxy
 * for partitions) and the checker that reads the histories.
 */
export {
  type AuditRecord,
  type CheckInput,
  type CheckResult,
  check,
  type KeySummary,
  type Mode,
  type RestartRecord,
  type Violation,
  type ViolationKind,
  type ViolationWindow,
} from "./checker.js";
export { RESOURCE_KINDS, type ResourceKind } from "./counter.js";
export { TortureConfigError, TortureError } from "./errors.js";
export {
  decodeValue,
  encodeValue,
  foldHistory,
  formatEvent,
  type HistoryEvent,
  type Op,
  type OpKind,
  type Outcome,
  parseEvent,
} from "./history.js";
export { htmlReport } from "./html.js";
export { createPrng, hashSeed, type Prng } from "./prng.js";
export { createProgress, type ProgressDisplay, progressLine } from "./progress.js";
export { type PartitionMode, PartitionProxy } from "./proxy.js";
export { jsonReport, REPORT_VERSION, summaryText } from "./report.js";
export {
  DEFAULT_OPTIONS,
  type FaultRecord,
  runTorture,
  type TortureOptions,
  type TortureProgress,
  type TortureResult,
  validateOptions,
} from "./run.js";
export {
  type Backend,
  FAULT_KINDS,
  type FaultKind,
  faultNeeds,
  MAX_FAULTS,
  type PlannedFault,
  parseFaults,
  planFaults,
  type ScheduleOptions,
} from "./schedule.js";
export type { LockScope } from "./worker.js";
