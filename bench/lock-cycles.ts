/**
 * The measuring code of the lock benchmarks, shared by `bench/lock.ts` (etcd) and `bench/lockd.ts`
 * (lockd vs etcd). Every function takes endpoints and a time budget, runs against that server, and
 * returns figures; printing is the caller's job.
 */
import diagnostics_channel from "node:diagnostics_channel";
import { setMaxListeners } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { Etcd3, EtcdLockFailedError } from "etcd3";
import { AbortedError, connect, LOCK_CHANNEL, type Lock, type LockEvent } from "../src/client/index.js";
import { etcdServices } from "../src/proto/load.js";
import { CompareResult, CompareTarget } from "../src/proto/types.js";

/** Figures of a run of sequential lock/unlock cycles. */
export interface CycleStats {
  label: string;
  cycles: number;
  seconds: number;
  /** Cycles per second. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

/** Figures of a run with many contenders on one lock. */
export interface ContentionStats {
  label: string;
  waiters: number;
  /** Acquisitions (each followed by a release) completed inside the time budget. */
  cycles: number;
  /** The time budget, in seconds. */
  seconds: number;
  throughput: number;
  /** What `wakeupsPerRelease` is per: fencelock's hand-overs to a queued waiter, etcd3's releases. */
  releases: number;
  /**
   * fencelock: watch events delivered to waiters per hand-over of the lock to a queued waiter (1.00 is
   * ideal). etcd3 has no watch: failed attempts per release, i.e. how often a contender woke up in vain.
   */
  wakeupsPerRelease: number;
  /** Acquisitions that overtook a contender already known to be waiting before the winner even asked. */
  fifoViolations: number;
}

/** Budget of one run. */
export interface RunOptions {
  durationMs: number;
  /** Cycles run before measuring (of each runner, in turn). */
  warmup?: number;
  /**
   * Time spent running cycles (in turn, as measured) before measuring, on top of `warmup`, so that a
   * server whose code a JIT compiles as it runs is measured once it is compiled (V8 takes seconds).
   */
  warmupMs?: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);

type Unary = (
  req: object,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;
function rawCall<T>(client: grpc.Client, method: string, req: object): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
  return new Promise((resolve, reject) =>
    fn.call(client, req, { deadline: Date.now() + 5000 }, (err, res) =>
      err ? reject(err) : resolve(res as T),
    ),
  );
}

/** One way of doing a lock cycle, set up and ready to run it again and again. */
export interface CycleRunner {
  label: string;
  /** One acquire + release. */
  cycle(): Promise<void>;
  /** Releases what the runner set up. */
  close(): Promise<void>;
}

/**
 * Runs the runners' cycles in turn (one cycle each, round and round) for `durationMs`, so a machine
 * whose load changes during the run weighs on every runner alike. Then closes them.
 */
export async function measureInterleaved(runners: CycleRunner[], options: RunOptions): Promise<CycleStats[]> {
  try {
    for (let i = 0; i < (options.warmup ?? 20); i++) for (const r of runners) await r.cycle();
    const warm = performance.now() + (options.warmupMs ?? 0);
    for (let i = 0; i < 1_000_000 && performance.now() < warm; i++) for (const r of runners) await r.cycle();
    const times = runners.map(() => [] as number[]);
    const end = performance.now() + options.durationMs;
    while (performance.now() < end) {
      for (const [i, r] of runners.entries()) {
        const t = performance.now();
        await r.cycle();
        times[i]?.push(performance.now() - t);
      }
    }
    return runners.map((r, i) => {
      const sorted = (times[i] as number[]).sort((a, b) => a - b);
      const seconds = sorted.reduce((sum, t) => sum + t, 0) / 1000;
      return {
        label: r.label,
        cycles: sorted.length,
        seconds,
        throughput: sorted.length / seconds,
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
      };
    });
  } finally {
    for (const r of runners) await r.close();
  }
}

/**
 * The baseline: the least a lock cycle can cost on this server. One Txn put-if-absent under a lease
 * granted once and reused, then one DeleteRange, over raw gRPC to the first endpoint.
 */
export async function idealRunner(endpoints: string[]): Promise<CycleRunner> {
  const services = etcdServices();
  const endpoint = endpoints[0] as string;
  const kv = new services.KV(endpoint, grpc.credentials.createInsecure());
  const lease = new services.Lease(endpoint, grpc.credentials.createInsecure());
  const granted = await rawCall<{ ID: string }>(lease, "LeaseGrant", { TTL: "60", ID: "0" });
  const key = Buffer.from(`/bench/ideal/${process.pid}`);
  return {
    label: "ideal cycle (raw Txn put-if-absent + DeleteRange)",
    async cycle() {
      const res = await rawCall<{ succeeded: boolean }>(kv, "Txn", {
        compare: [{ result: CompareResult.EQUAL, target: CompareTarget.CREATE, key, create_revision: "0" }],
        success: [{ request_put: { key, value: Buffer.alloc(0), lease: granted.ID } }],
      });
      if (!res.succeeded) throw new Error("ideal cycle: key already present");
      await rawCall(kv, "DeleteRange", { key });
    },
    async close() {
      await rawCall(lease, "LeaseRevoke", { ID: granted.ID }).catch(() => {});
      kv.close();
      lease.close();
    },
  };
}

/** fencelock's `lock()` + `unlock()` with one session and nobody else on the lock. */
export async function fencelockRunner(
  endpoints: string[],
  label = "fencelock lock() + unlock()",
): Promise<CycleRunner> {
  const client = connect({ endpoints });
  const session = await client.session({ ttl: 30 });
  const mutex = session.mutex(`/bench/fencelock/uncontended-${process.pid}`);
  return {
    label,
    async cycle() {
      const lock = await mutex.lock();
      await lock.unlock();
    },
    close: () => client.close(),
  };
}

/** The `etcd3` package's `lock(name).do(fn)` with nobody else on the lock. */
export async function etcd3Runner(endpoints: string[]): Promise<CycleRunner> {
  const client = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
  const name = `/bench/etcd3/uncontended-${process.pid}`;
  return {
    label: "etcd3 lock().do()",
    async cycle() {
      await client
        .lock(name)
        .ttl(30)
        .do(async () => {});
    },
    async close() {
      client.close();
    },
  };
}

/** Who is waiting since when, to count FIFO violations the same way for both clients. */
class FifoCheck {
  private readonly waiting = new Map<number, { calledAt: number; queuedAt: number | undefined }>();
  violations = 0;

  called(worker: number): void {
    this.waiting.set(worker, { calledAt: performance.now(), queuedAt: undefined });
  }

  /** The worker's first request came back without the lock: the server knows it waits. */
  queued(worker: number): void {
    const w = this.waiting.get(worker);
    if (w && w.queuedAt === undefined) w.queuedAt = performance.now();
  }

  acquired(worker: number): void {
    const me = this.waiting.get(worker);
    this.waiting.delete(worker);
    if (!me) return;
    for (const other of this.waiting.values()) {
      if (other.queuedAt !== undefined && other.queuedAt < me.calledAt) {
        this.violations++;
        return;
      }
    }
  }
}

/** What `contention` counted in one run. */
interface ContentionRun {
  label: string;
  waiters: number;
  cycles: number;
  seconds: number;
  throughput: number;
  fifo: FifoCheck;
}

async function contention(
  label: string,
  waiters: number,
  options: RunOptions,
  worker: (i: number, fifo: FifoCheck, end: AbortSignal, counted: () => void) => Promise<void>,
): Promise<ContentionRun> {
  const fifo = new FifoCheck();
  let cyclesDone = 0;
  // At the end, waiters give up instead of each taking one more turn.
  const end = new AbortController();
  setMaxListeners(0, end.signal);
  const timer = setTimeout(() => end.abort(), options.durationMs);
  try {
    await Promise.all(
      Array.from({ length: waiters }, (_, i) =>
        worker(i, fifo, end.signal, () => {
          if (!end.signal.aborted) cyclesDone++;
        }),
      ),
    );
  } finally {
    clearTimeout(timer);
  }
  const seconds = options.durationMs / 1000;
  return { label, waiters, cycles: cyclesDone, seconds, throughput: cyclesDone / seconds, fifo };
}

/** A run's figures, with `wakeups` spread over `releases`. */
function contentionStats(run: ContentionRun, releases: number, wakeups: number): ContentionStats {
  return {
    label: run.label,
    waiters: run.waiters,
    cycles: run.cycles,
    seconds: run.seconds,
    throughput: run.throughput,
    releases,
    wakeupsPerRelease: releases === 0 ? 0 : wakeups / releases,
    fifoViolations: run.fifo.violations,
  };
}

/** fencelock contenders set up on one server, ready to contend for a while, again and again. */
export interface ContentionRig {
  /** Runs the contenders for `options.durationMs` and returns that run's figures. */
  run(options: RunOptions): Promise<ContentionStats>;
  /** Closes the contenders' client (their sessions end with it). */
  close(): Promise<void>;
}

/**
 * `waiters` fencelock contenders, each with its own session, set up to take and release one lock in a
 * loop. Each run counts watch events delivered to waiters (from the client's `LOCK_CHANNEL`) per
 * release. The sessions live across runs, so runs on several servers can alternate without setting up
 * (and tearing down) 64 sessions between them.
 */
export async function fencelockContentionRig(endpoints: string[], waiters: number): Promise<ContentionRig> {
  const name = `/bench/fencelock/contention-${waiters}`;
  const client = connect({ endpoints });
  const sessions = await Promise.all(Array.from({ length: waiters }, () => client.session({ ttl: 30 })));
  const workerOfKey = new Map(sessions.map((s, i) => [s.mutex(name).key, i]));
  return {
    async run(options) {
      let fifoRef: FifoCheck | undefined;
      // Watch events per waiting attempt, counted once the attempt ends with the lock (a hand-over).
      let wakes = 0;
      let handoffs = 0;
      const pendingWakes = new Map<string, number>();
      const onEvent = (message: unknown) => {
        const e = message as LockEvent;
        if (e.name !== name) return;
        if (e.event === "wake") pendingWakes.set(e.key, (pendingWakes.get(e.key) ?? 0) + 1);
        else if (e.event === "queued") {
          pendingWakes.set(e.key, 0);
          fifoRef?.queued(workerOfKey.get(e.key) ?? -1);
        } else if (e.event === "acquired" && pendingWakes.has(e.key)) {
          wakes += pendingWakes.get(e.key) ?? 0;
          handoffs++;
          pendingWakes.delete(e.key);
        } else if (e.event === "cancelled") pendingWakes.delete(e.key);
      };
      diagnostics_channel.subscribe(LOCK_CHANNEL, onEvent);
      try {
        const run = await contention("fencelock", waiters, options, async (i, fifo, end, counted) => {
          fifoRef = fifo;
          const mutex = (sessions[i] as (typeof sessions)[number]).mutex(name);
          while (!end.aborted) {
            fifo.called(i);
            let lock: Lock;
            try {
              lock = await mutex.lock({ signal: end, timeoutMs: 60_000 });
            } catch (err) {
              if (err instanceof AbortedError) return;
              throw err;
            }
            fifo.acquired(i);
            counted();
            await lock.unlock();
          }
        });
        // Each hand-over to a queued waiter should cost exactly one watch event.
        return contentionStats(run, handoffs, wakes);
      } finally {
        diagnostics_channel.unsubscribe(LOCK_CHANNEL, onEvent);
      }
    },
    close: () => client.close(),
  };
}

/** One run of {@link fencelockContentionRig}: set up, run once, close. */
export async function fencelockContention(
  endpoints: string[],
  waiters: number,
  options: RunOptions,
): Promise<ContentionStats> {
  const rig = await fencelockContentionRig(endpoints, waiters);
  try {
    return await rig.run(options);
  } finally {
    await rig.close();
  }
}

/** The figures of several runs of the same contenders on one server, as if one run. */
export function mergeContention(runs: ContentionStats[]): ContentionStats {
  const first = runs[0];
  if (!first) throw new Error("mergeContention: no runs");
  const sum = (pick: (r: ContentionStats) => number) => runs.reduce((total, r) => total + pick(r), 0);
  const cycles = sum((r) => r.cycles);
  const seconds = sum((r) => r.seconds);
  const releases = sum((r) => r.releases);
  return {
    label: first.label,
    waiters: first.waiters,
    cycles,
    seconds,
    throughput: cycles / seconds,
    releases,
    wakeupsPerRelease: releases === 0 ? 0 : sum((r) => r.wakeupsPerRelease * r.releases) / releases,
    fifoViolations: sum((r) => r.fifoViolations),
  };
}

/**
 * `waiters` contenders using the `etcd3` package, whose lock does not wait: each retries `acquire()`
 * after a short random pause (5–25 ms) until it succeeds, then releases.
 */
export async function etcd3Contention(
  endpoints: string[],
  waiters: number,
  options: RunOptions,
): Promise<ContentionStats> {
  const name = `/bench/etcd3/contention-${waiters}`;
  const client = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
  let failedAttempts = 0;
  let releases = 0;
  try {
    const run = await contention("etcd3 retry loop", waiters, options, async (i, fifo, end, counted) => {
      while (!end.aborted) {
        fifo.called(i);
        for (let attempt = 0; ; attempt++) {
          const lock = client.lock(name).ttl(30);
          try {
            await lock.acquire();
          } catch (err) {
            if (!(err instanceof EtcdLockFailedError)) throw err;
            failedAttempts++;
            fifo.queued(i);
            if (end.aborted) return;
            if (attempt > 10_000) throw new Error("etcd3 contender starved");
            await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
            continue;
          }
          fifo.acquired(i);
          counted();
          await lock.release();
          releases++;
          break;
        }
      }
    });
    return contentionStats(run, releases, failedAttempts);
  } finally {
    client.close();
  }
}
