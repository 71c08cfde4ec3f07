/**
 * One torture run: starts the resource holding the counters (the fenced storage, PostgreSQL or SQLite),
 * the lock service (lockd, or a three-member etcd cluster), a
 * partitionable proxy per worker and endpoint, and the workers; injects the seeded fault schedule; then
 * stops the workers, reads the final counters and the resource's record of accepted operations, and runs
 * the checker. Every
 * process it started is stopped by PID and every temporary directory removed, whatever happens.
 */
import { mkdir } from "node:fs/promises";
import { startEtcdCluster, startLockd, tempDir } from "../testkit/index.js";
import { type AuditRecord, type CheckResult, check, type Mode, type RestartRecord } from "./checker.js";
import { RESOURCE_KINDS, type ResourceKind } from "./counter.js";
import { TortureConfigError, TortureError } from "./errors.js";
import { foldHistory, type Op } from "./history.js";
import { WorkerPool } from "./pool.js";
import { PartitionProxy } from "./proxy.js";
import { startResource } from "./resource.js";
import { type Backend, type FaultKind, faultNeeds, type PlannedFault, planFaults } from "./schedule.js";
import type { LockScope } from "./worker.js";

/** Everything a run is configured by. */
export interface TortureOptions {
  backend: Backend;
  /** Where the counters live: the fenced storage server, PostgreSQL or SQLite behind the guard. */
  resource: ResourceKind;
  clients: number;
  keys: number;
  scope: LockScope;
  mode: Mode;
  faults: FaultKind[];
  durationMs: number;
  seed: string;
  /** Lease TTL of the workers' sessions, seconds. */
  ttl: number;
  /** Mean gap between faults, ms. */
  intervalMs: number;
  /** Pause between a worker's read and its write, ms. */
  thinkMs: number;
  /** Timeout of each storage call and lock wait in the workers, ms. */
  opTimeoutMs: number;
  /** Most operations per worker incarnation. */
  maxOpsPerWorker: number;
  /** Keep the per-worker JSONL histories here instead of a removed temporary directory. */
  historyDir?: string;
}

/** The defaults of `fencelock torture`. */
export const DEFAULT_OPTIONS: TortureOptions = {
  backend: "lockd",
  resource: "storage",
  clients: 4,
  keys: 1,
  scope: "per-key",
  mode: "fenced",
  faults: [],
  durationMs: 30_000,
  seed: "1",
  ttl: 1,
  intervalMs: 2000,
  thinkMs: 20,
  opTimeoutMs: 4000,
  maxOpsPerWorker: 200_000,
};

/** A fault as it happened. Times are epoch ms. */
export interface FaultRecord {
  index: number;
  kind: FaultKind;
  startMs: number;
  endMs: number;
  /** What it hit: a worker, a member, `storage`, `lockd`. */
  target: string;
  /** Set when the fault could not be injected or healed. */
  error?: string;
}

/** A snapshot for the progress display. */
export interface TortureProgress {
  elapsedMs: number;
  durationMs: number;
  /** Completed operations so far. */
  ops: number;
  faults: number;
  /** The fault in progress, e.g. `pause w2.1`. */
  current?: string;
}

/** Everything a run produced. */
export interface TortureResult {
  options: TortureOptions;
  startedMs: number;
  endedMs: number;
  schedule: PlannedFault[];
  faults: FaultRecord[];
  ops: Op[];
  audit: AuditRecord[];
  finals: Record<string, string | null>;
  restarts: RestartRecord[];
  /** Every process the run started (servers, workers, each restart), all stopped when it resolves. */
  pids: number[];
  /** Worker exits the harness did not cause. */
  crashes: { worker: string; code: number | string; tail: string }[];
  check: CheckResult;
}

/** Throws `TortureConfigError` for options out of range. */
export function validateOptions(o: TortureOptions): void {
  const int = (v: number, lo: number, hi: number, name: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new TortureConfigError(`${name} must be an integer from ${lo} to ${hi}, got ${v}`);
    }
  };
  int(o.clients, 1, 64, "--clients");
  int(o.keys, 1, 1000, "--keys");
  int(o.durationMs, 1000, 24 * 3600_000, "--duration (ms)");
  int(o.ttl, 1, 60, "--ttl");
  int(o.intervalMs, 100, 3600_000, "--fault-interval (ms)");
  int(o.thinkMs, 0, 10_000, "--think (ms)");
  int(o.opTimeoutMs, 100, 60_000, "--op-timeout (ms)");
  int(o.maxOpsPerWorker, 4, 10_000_000, "max operations per worker");
  if (!["unfenced", "write-fenced", "fenced"].includes(o.mode)) {
    throw new TortureConfigError(`--mode must be unfenced, write-fenced or fenced, got "${o.mode}"`);
  }
  if (!RESOURCE_KINDS.includes(o.resource)) {
    throw new TortureConfigError(`--resource must be ${RESOURCE_KINDS.join(", ")}, got "${o.resource}"`);
  }
  for (const kind of o.faults) {
    const needs = faultNeeds(kind, o.backend, o.resource);
    if (needs) throw new TortureConfigError(`${kind} needs ${needs}`);
  }
}

const ETCD_MEMBERS = 3;

interface LockService {
  endpoints: string[];
  /** PIDs of the service's current processes. */
  pids(): number[];
  kill(member: number | "leader"): Promise<string>;
  start(target: string): Promise<void>;
  stop(): Promise<void>;
}

async function startLockService(backend: Backend, signal: AbortSignal): Promise<LockService> {
  if (backend === "lockd") {
    const lockd = await startLockd({ memory: false, signal });
    return {
      endpoints: lockd.endpoints,
      pids: () => [lockd.child.pid],
      kill: async () => {
        await lockd.kill();
        return "lockd";
      },
      start: () => lockd.restart(),
      stop: () => lockd.stop(),
    };
  }
  const cluster = await startEtcdCluster({ size: ETCD_MEMBERS, signal });
  return {
    endpoints: cluster.endpoints,
    pids: () => cluster.members.flatMap((m) => (m.child ? [m.child.pid] : [])),
    kill: async (member) => {
      let i = member === "leader" ? await cluster.leaderIndex() : member;
      const leader = member === "leader" && i >= 0;
      if (i < 0) i = 0;
      await cluster.killMember(i);
      return `etcd member ${i}${leader ? " (leader)" : ""}`;
    },
    start: async (target) => {
      const m = /member (\d+)/.exec(target);
      await cluster.restartMember(Number(m?.[1] ?? 0));
    },
    stop: () => cluster.stop(),
  };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs the torture test. Resolves with the full record once every process is stopped. `signal` ends the
 * run early (the faults heal, the workers stop, the check runs on what was recorded). Rejects with
 * `TortureConfigError` on bad options (nothing started) or `TortureError` if a server cannot start.
 */
export async function runTorture(
  options: TortureOptions,
  hooks: { signal?: AbortSignal; onProgress?: (p: TortureProgress) => void } = {},
): Promise<TortureResult> {
  validateOptions(options);
  const o = options;
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(hooks.signal?.reason);
  hooks.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const cleanups: (() => Promise<void>)[] = [];
  const crashes: TortureResult["crashes"] = [];
  const faults: FaultRecord[] = [];
  const restarts: RestartRecord[] = [];
  const schedule = planFaults({
    seed: o.seed,
    durationMs: o.durationMs,
    kinds: o.faults,
    clients: o.clients,
    members: o.backend === "etcd" ? ETCD_MEMBERS : 1,
    ttlMs: o.ttl * 1000,
    intervalMs: o.intervalMs,
  });
  const keys = Array.from({ length: o.keys }, (_, i) => `k${i}`);
  const pids = new Set<number>();
  let progressTimer: NodeJS.Timeout | undefined;
  try {
    let historyDir = o.historyDir;
    if (historyDir) await mkdir(historyDir, { recursive: true });
    else {
      const tmp = await tempDir("torture");
      cleanups.push(tmp.remove);
      historyDir = tmp.path;
    }
    // Both servers start at once; whichever started is stopped even if the other failed.
    const [resourceStart, serviceStart] = await Promise.allSettled([
      startResource(o.resource, abort.signal),
      startLockService(o.backend, abort.signal),
    ]);
    if (resourceStart.status === "fulfilled") cleanups.push(() => resourceStart.value.stop());
    if (serviceStart.status === "fulfilled") cleanups.push(() => serviceStart.value.stop());
    if (resourceStart.status === "rejected") throw resourceStart.reason;
    if (serviceStart.status === "rejected") {
      throw new TortureError(`${o.backend} did not start`, { cause: serviceStart.reason });
    }
    const resource = resourceStart.value;
    const service = serviceStart.value;
    for (const pid of resource.pids()) pids.add(pid);
    for (const pid of service.pids()) pids.add(pid);
    const proxies: PartitionProxy[][] = [];
    for (let slot = 0; slot < o.clients; slot++) {
      const row = service.endpoints.map((e) => new PartitionProxy(e));
      for (const p of row) {
        await p.listen();
        cleanups.push(() => p.close());
      }
      proxies.push(row);
    }
    const readAll = () => resource.readAll(keys, abort.signal);
    const crashRestart = async (): Promise<void> => {
      const killMs = Date.now();
      await resource.crash();
      await resource.restart();
      for (const pid of resource.pids()) pids.add(pid);
      restarts.push({ killMs, upMs: Date.now(), values: await readAll() });
    };

    const pool = new WorkerPool({
      slots: o.clients,
      historyDir,
      onCrash: (worker, code, tail) => crashes.push({ worker, code, tail }),
      args: (worker, slot, deadline) => [
        "--worker",
        worker,
        "--endpoints",
        (proxies[slot] ?? []).map((p) => p.endpoint).join(","),
        "--resource",
        o.resource,
        "--url",
        resource.url,
        "--mode",
        o.mode,
        "--keys",
        String(o.keys),
        "--scope",
        o.scope,
        "--ttl",
        String(o.ttl),
        "--seed",
        o.seed,
        "--max-ops",
        String(o.maxOpsPerWorker),
        "--deadline",
        deadline,
        "--think-ms",
        String(o.thinkMs),
        "--op-timeout-ms",
        String(o.opTimeoutMs),
      ],
    });
    cleanups.push(() => pool.killAll());
    await pool.start(60_000);
    const startedMs = Date.now();
    const deadlineMs = startedMs + o.durationMs;
    pool.go(deadlineMs);

    let current: string | undefined;
    if (hooks.onProgress) {
      const onProgress = hooks.onProgress;
      progressTimer = setInterval(() => {
        onProgress({
          elapsedMs: Math.min(Date.now() - startedMs, o.durationMs),
          durationMs: o.durationMs,
          ops: pool.events.reduce((n, e) => n + (e.t === "invoke" ? 0 : 1), 0),
          faults: faults.length,
          ...(current ? { current } : {}),
        });
      }, 250);
    }

    const inject = async (f: PlannedFault): Promise<void> => {
      const record: FaultRecord = { index: f.index, kind: f.kind, startMs: Date.now(), endMs: 0, target: "" };
      faults.push(record);
      const hold = () => abortableSleep(f.durationMs, abort.signal);
      try {
        switch (f.kind) {
          case "pause": {
            // Aim at a worker between its read and its write, where a pause does its damage.
            let slot = await pool.pauseNextReader(f.slot ?? 0, 2000);
            if (slot === undefined) {
              slot = f.slot ?? 0;
              pool.pause(slot);
            }
            record.target = pool.workerOf(slot);
            record.startMs = Date.now();
            current = `pause ${record.target}`;
            try {
              if (f.resume === "rival-read") {
                const rival = await pool.rivalRead(slot, f.durationMs, abort.signal);
                record.target += rival ? " (until a rival read)" : "";
              } else await hold();
            } finally {
              pool.resume(slot);
            }
            break;
          }
          case "kill": {
            record.target = await pool.kill(f.slot ?? 0);
            current = `kill ${record.target}`;
            await hold();
            pool.replace(f.slot ?? 0);
            break;
          }
          case "lockd-restart":
          case "etcd-member": {
            record.target = await service.kill(f.member ?? 0);
            current = `kill ${record.target}`;
            try {
              await hold();
            } finally {
              await service.start(record.target);
              for (const pid of service.pids()) pids.add(pid);
            }
            break;
          }
          case "storage-restart":
          case "postgres-restart": {
            record.target = resource.kind;
            current = `${resource.kind} down`;
            await resource.crash();
            try {
              await hold();
            } finally {
              await resource.restart();
              for (const pid of resource.pids()) pids.add(pid);
            }
            restarts.push({ killMs: record.startMs, upMs: Date.now(), values: await readAll() });
            break;
          }
          case "partition": {
            const slot = f.slot ?? 0;
            record.target = `${pool.workerOf(slot)} (${f.partition})`;
            current = `partition ${record.target}`;
            for (const p of proxies[slot] ?? []) p.partition(f.partition ?? "blackhole");
            try {
              await hold();
            } finally {
              for (const p of proxies[slot] ?? []) p.heal();
            }
            break;
          }
        }
      } catch (err) {
        record.error = err instanceof Error ? err.message : String(err);
      } finally {
        record.endMs = Date.now();
        current = undefined;
      }
    };

    for (const f of schedule) {
      await abortableSleep(startedMs + f.atMs - Date.now(), abort.signal);
      if (abort.signal.aborted || Date.now() + f.durationMs >= deadlineMs) break;
      await inject(f);
    }
    await abortableSleep(deadlineMs - Date.now(), abort.signal);
    await pool.stop(o.opTimeoutMs + 2000);
    // A killed worker's last request may still be in flight to the resource; let it land first.
    await new Promise((r) => setTimeout(r, 300));
    // One more crash at the end, so that durability is checked against every acknowledged write.
    if (o.faults.includes("storage-restart") || o.faults.includes("postgres-restart")) await crashRestart();
    const finals = await readAll();
    const audit = await resource.readAudit(abort.signal);
    const endedMs = Date.now();
    const ops = foldHistory(pool.events);
    const result = check({ mode: o.mode, keys, ops, audit, finals, restarts });
    for (const pid of pool.pids) pids.add(pid);
    return {
      options: o,
      startedMs,
      endedMs,
      schedule,
      faults,
      ops,
      audit,
      finals,
      restarts,
      crashes,
      pids: [...pids],
      check: result,
    };
  } finally {
    clearInterval(progressTimer);
    hooks.signal?.removeEventListener("abort", onOuterAbort);
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  }
}
