/**
 * A process's memory as Linux reports it in `/proc/<pid>/status`, for the tests and benchmarks that
 * bound a server's memory.
 */
import { readFileSync } from "node:fs";
import { FencelockError } from "../shared/errors.js";

/** `/proc/<pid>/status` could not be read or has no such field (not Linux, or the process is gone). */
export class ProcessMemoryError extends FencelockError<"PROCESS_MEMORY_UNREADABLE"> {
  constructor(message: string, options?: { cause?: unknown }) {
    super("PROCESS_MEMORY_UNREADABLE", message, options);
  }
}

/**
 * A field of `/proc/<pid>/status` in MB: `VmRSS` (resident now, the default) or `VmHWM` (the peak
 * since the process started). Synchronous, reads once; throws `ProcessMemoryError` if it cannot.
 */
export function processMemoryMb(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch (err) {
    throw new ProcessMemoryError(`cannot read /proc/${pid}/status`, { cause: err });
  }
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
  if (!m) throw new ProcessMemoryError(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}
