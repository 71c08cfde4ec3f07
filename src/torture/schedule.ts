/**
 * The fault schedule: which fault happens when, to whom and for how long, drawn from a seeded PRNG so
 * that the same seed and options always give the same schedule. Faults are sequential (the next one starts
 * after the previous one has healed plus a gap), which keeps each fault's effect readable in the history.
 */
import type { ResourceKind } from "./counter.js";
import { TortureConfigError } from "./errors.js";
import { createPrng } from "./prng.js";

/** Every fault the harness can inject. */
export const FAULT_KINDS = [
  "pause",
  "kill",
  "lockd-restart",
  "etcd-member",
  "storage-restart",
  "partition",
  "postgres-restart",
] as const;

/** One kind of fault. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The lock service a run uses. */
export type Backend = "lockd" | "etcd";

/** One planned fault. Times are milliseconds from the start of the run. */
export interface PlannedFault {
  /** Position in the schedule, from 0. */
  index: number;
  kind: FaultKind;
  atMs: number;
  /**
   * How long the fault lasts before it is healed (pause → SIGCONT, partition → heal, restart → start;
   * `postgres-restart` is PostgreSQL's immediate shutdown, then a start on the same data).
   */
  durationMs: number;
  /** The worker slot hit by `pause`, `kill` and `partition`. */
  slot?: number;
  /** The etcd member hit by `etcd-member`: an index, or the leader at that moment. */
  member?: number | "leader";
  /**
   * When a pause ends: after `durationMs` (`timer`), or as soon as another worker has read under the
   * paused worker's lock with a newer token (`rival-read`, at most `durationMs`), the moment at which a
   * late write does the most harm.
   */
  resume?: "timer" | "rival-read";
  /** How a partition behaves: stall every byte (`blackhole`) or reset every connection (`reset`). */
  partition?: "blackhole" | "reset";
}

/** What a schedule is drawn from. */
export interface ScheduleOptions {
  seed: string;
  durationMs: number;
  kinds: readonly FaultKind[];
  clients: number;
  /** Members of the etcd cluster (ignored for lockd). */
  members: number;
  /** The workers' lease TTL in milliseconds: pauses last longer than it. */
  ttlMs: number;
  /** Mean gap between the end of one fault and the start of the next. */
  intervalMs: number;
}

/** The most faults one schedule holds, whatever the duration. */
export const MAX_FAULTS = 10_000;

/** Whether `kind` can be injected with this backend and resource; if not, what it needs. */
export function faultNeeds(kind: FaultKind, backend: Backend, resource: ResourceKind): string | undefined {
  if (kind === "lockd-restart" && backend !== "lockd") return "the lockd backend";
  if (kind === "etcd-member" && backend !== "etcd") return "the etcd backend";
  if (kind === "storage-restart" && resource !== "storage") return "--resource storage";
  if (kind === "postgres-restart" && resource !== "postgres") return "--resource postgres";
  return undefined;
}

/**
 * Parses `--faults`: a comma-separated list of kinds, `all` (every kind the backend and resource support)
 * or `none`. Throws `TortureConfigError` on an unknown kind or one the backend or resource cannot do.
 */
export function parseFaults(text: string, backend: Backend, resource: ResourceKind = "storage"): FaultKind[] {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed === "none") return [];
  const supported = FAULT_KINDS.filter((k) => faultNeeds(k, backend, resource) === undefined);
  if (trimmed === "all") return [...supported];
  const kinds: FaultKind[] = [];
  for (const part of trimmed.split(",")) {
    const kind = part.trim() as FaultKind;
    if (!FAULT_KINDS.includes(kind)) {
      throw new TortureConfigError(`unknown fault "${part}" (known: ${FAULT_KINDS.join(", ")}, all, none)`);
    }
    const needs = faultNeeds(kind, backend, resource);
    if (needs) throw new TortureConfigError(`fault "${kind}" needs ${needs}`);
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

/**
 * Draws the schedule. Pure: the same options give the same list. Every fault ends before `durationMs`;
 * the list holds at most `MAX_FAULTS` entries.
 */
export function planFaults(options: ScheduleOptions): PlannedFault[] {
  const { kinds, durationMs, ttlMs, intervalMs, clients, members } = options;
  if (kinds.length === 0) return [];
  const rng = createPrng(`schedule:${options.seed}`);
  const gap = () => rng.between(Math.ceil(intervalMs / 2), Math.ceil((intervalMs * 3) / 2));
  const faults: PlannedFault[] = [];
  let at = gap();
  while (faults.length < MAX_FAULTS) {
    const kind = rng.pick(kinds);
    const fault: PlannedFault = { index: faults.length, kind, atMs: at, durationMs: 0 };
    switch (kind) {
      case "pause":
        fault.slot = rng.int(clients);
        fault.durationMs = ttlMs + rng.between(1000, 2500);
        fault.resume = rng.next() < 0.5 ? "timer" : "rival-read";
        break;
      case "kill":
        fault.slot = rng.int(clients);
        fault.durationMs = rng.between(0, 300);
        break;
      case "lockd-restart":
      case "storage-restart":
      case "postgres-restart":
        fault.durationMs = rng.between(200, 1500);
        break;
      case "etcd-member": {
        const target = rng.int(members + 1);
        fault.member = target === members ? "leader" : target;
        fault.durationMs = rng.between(500, 2500);
        break;
      }
      case "partition":
        fault.slot = rng.int(clients);
        fault.partition = rng.next() < 0.5 ? "blackhole" : "reset";
        fault.durationMs = rng.between(500, ttlMs + 2000);
        break;
    }
    if (fault.atMs + fault.durationMs >= durationMs) break;
    faults.push(fault);
    at = fault.atMs + fault.durationMs + gap();
  }
  return faults;
}
