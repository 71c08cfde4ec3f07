/**
 * The worker pool: one real child process per slot, started, paused, killed and replaced by PID. It reads
 * each worker's history lines as they come, keeps them in memory and in a per-incarnation JSONL file, and
 * tracks where each worker is in its cycle so a pause can be aimed at a worker between read and write.
 */
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Child } from "../testkit/index.js";
import { TortureError } from "./errors.js";
import { type HistoryEvent, parseEvent } from "./history.js";

/** Where a worker is in its cycle, as its last event says. */
export type Phase = "idle" | "locking" | "holding" | "read-done" | "writing" | "unlocking";

/** What the pool needs to start workers. */
export interface PoolOptions {
  slots: number;
  /**
   * The worker's arguments for a slot and incarnation (its name is `w<slot>.<incarnation>`); `deadline`
   * is the value of its `--deadline` flag (`stdin` for the first workers, which wait for `go`).
   */
  args: (worker: string, slot: number, deadline: string) => string[];
  /** Directory for the per-worker JSONL histories. */
  historyDir: string;
  /** Most replacements per slot after crashes (kills by the harness do not count). */
  maxRestarts?: number;
  /** Called for each worker exit the harness did not cause, other than a normal end (code 0). */
  onCrash?: (worker: string, code: number | string, tail: string) => void;
}

interface SlotState {
  child: Child | undefined;
  worker: string;
  incarnation: number;
  phase: Phase;
  paused: boolean;
  expectedExit: boolean;
  crashes: number;
  /** The lock the worker last asked for, and the token it holds (`null` when it holds none). */
  lock: string | undefined;
  token: string | null;
}

const READY_LINE = JSON.stringify({ event: "ready" });

/** The path of the worker entry module in the build. */
export const WORKER_PATH = new URL("./worker-main.js", import.meta.url).pathname;

const live = new Set<Child>();
let exitHook = false;

/** A set of worker processes. */
export class WorkerPool {
  /** Every event received, in arrival order. */
  readonly events: HistoryEvent[] = [];
  /** The PID of every worker process started. */
  readonly pids: number[] = [];
  private readonly slots: SlotState[] = [];
  private stopping = false;
  private deadlineMs: number | undefined;
  private armed: ((slot: number | undefined) => void) | undefined;
  private readonly rivalWatchers = new Set<(slot: number) => void>();

  constructor(private readonly options: PoolOptions) {
    for (let i = 0; i < options.slots; i++) {
      this.slots.push({
        child: undefined,
        worker: "",
        incarnation: 0,
        phase: "idle",
        paused: false,
        expectedExit: false,
        crashes: 0,
        lock: undefined,
        token: null,
      });
    }
    if (!exitHook) {
      exitHook = true;
      // A worker outliving the harness would keep taking the lock: SIGKILL works even on a stopped one.
      process.once("exit", () => {
        for (const c of live) c.signal("SIGKILL");
      });
    }
  }

  /**
   * Starts every slot's first worker and resolves once all are loaded and waiting for `go`. Rejects with
   * `TortureError` if one exits first or `timeoutMs` passes.
   */
  async start(timeoutMs: number): Promise<void> {
    const ready = this.slots.map((_, i) => this.spawn(i));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TortureError(`the workers were not ready within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([Promise.all(ready), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Lets the waiting workers start; they stop starting cycles at `deadlineMs`, as will replacements. */
  go(deadlineMs: number): void {
    this.deadlineMs = deadlineMs;
    for (const s of this.slots) s.child?.process.stdin?.end(`go ${deadlineMs}\n`);
  }

  /** The current worker name of a slot. */
  workerOf(slot: number): string {
    return this.slot(slot).worker;
  }

  /** Slots whose worker has read and not yet started writing, and is not paused. */
  betweenReadAndWrite(): number[] {
    return this.slots.flatMap((s, i) =>
      s.phase === "read-done" && !s.paused && s.child?.running ? [i] : [],
    );
  }

  /**
   * SIGSTOPs the next worker that completes a read (the moment its `ok` line arrives, before it can
   * write), preferring `preferred` if several are ready at once. Resolves with the paused slot, or
   * `undefined` if none read within `timeoutMs`. A second call replaces the first (which resolves
   * `undefined`).
   */
  pauseNextReader(preferred: number, timeoutMs: number): Promise<number | undefined> {
    this.armed?.(undefined);
    const ready = this.betweenReadAndWrite();
    if (ready.length > 0) {
      const slot = ready.includes(preferred) ? preferred : (ready[0] as number);
      this.pause(slot);
      return Promise.resolve(slot);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      const finish = (slot: number | undefined) => {
        clearTimeout(timer);
        if (this.armed === finish) this.armed = undefined;
        resolve(slot);
      };
      this.armed = finish;
    });
  }

  /**
   * Resolves `true` as soon as another worker has read under the same lock with a newer token than the
   * one `slot`'s worker holds (so its lease is gone and the new holder is between read and write), or
   * `false` when `timeoutMs` passes or `signal` aborts. For a pause that ends at the worst moment.
   */
  rivalRead(slot: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const paused = this.slot(slot);
    const lock = paused.lock;
    const token = paused.token === null ? null : BigInt(paused.token);
    return new Promise((resolve) => {
      const finish = (value: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.rivalWatchers.delete(watcher);
        resolve(value);
      };
      const watcher = (other: number) => {
        const o = this.slots[other];
        if (other === slot || !o || o.lock !== lock || o.token === null || token === null) return;
        if (BigInt(o.token) > token) finish(true);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.rivalWatchers.add(watcher);
    });
  }

  /** SIGSTOPs a slot's worker; returns its name. */
  pause(slot: number): string {
    const s = this.slot(slot);
    s.child?.pause();
    s.paused = true;
    return s.worker;
  }

  /** SIGCONTs a slot's worker. */
  resume(slot: number): void {
    const s = this.slot(slot);
    s.child?.resume();
    s.paused = false;
  }

  /** SIGKILLs a slot's worker and waits for it to exit; returns its name. Call `replace` to go on. */
  async kill(slot: number): Promise<string> {
    const s = this.slot(slot);
    s.expectedExit = true;
    await s.child?.kill();
    return s.worker;
  }

  /** Starts a new incarnation in a slot whose worker is gone. */
  replace(slot: number): string {
    if (!this.stopping) void this.spawn(slot);
    return this.slot(slot).worker;
  }

  /** Asks every worker to stop (SIGCONT + SIGTERM), SIGKILLs those still alive after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (s) => {
        s.expectedExit = true;
        s.paused = false;
        await s.child?.stop(graceMs);
      }),
    );
  }

  /** SIGKILLs every worker at once and waits for them. Safe to call twice. */
  async killAll(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.slots.map(async (s) => {
        s.expectedExit = true;
        await s.child?.kill();
      }),
    );
  }

  private slot(i: number): SlotState {
    const s = this.slots[i];
    if (!s) throw new RangeError(`no worker slot ${i}`);
    return s;
  }

  private spawn(slot: number): Promise<void> {
    const s = this.slot(slot);
    s.incarnation++;
    s.worker = `w${slot}.${s.incarnation}`;
    s.phase = "idle";
    s.lock = undefined;
    s.token = null;
    s.paused = false;
    s.expectedExit = false;
    const worker = s.worker;
    const file = join(this.options.historyDir, `${worker}.jsonl`);
    const deadline = this.deadlineMs === undefined ? "stdin" : String(this.deadlineMs);
    const proc = spawn(process.execPath, [WORKER_PATH, ...this.options.args(worker, slot, deadline)], {
      stdio: [deadline === "stdin" ? "pipe" : "ignore", "pipe", "pipe"],
    });
    proc.stdin?.on("error", () => {});
    const { stdout, stderr } = proc;
    if (!stdout || !stderr) throw new TortureError(`worker ${worker} has no output pipes`);
    let markReady: () => void = () => {};
    let markFailed: (err: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    ready.catch(() => {});
    const child = new Child(worker, proc);
    s.child = child;
    if (proc.pid !== undefined) this.pids.push(proc.pid);
    live.add(child);
    proc.once("exit", () => live.delete(child));
    createInterface({ input: stdout }).on("line", (line) => {
      if (line === READY_LINE) markReady();
      const event = parseEvent(line);
      if (!event) return;
      this.events.push(event);
      appendFileSync(file, `${line}\n`);
      if (s.worker !== worker) return;
      s.phase = nextPhase(s.phase, event);
      if (event.t === "invoke" && event.op === "lock") {
        s.lock = event.lock;
        s.token = null;
      } else if (s.phase === "holding" && event.t === "ok" && event.token) s.token = event.token;
      if (s.phase !== "read-done") return;
      if (this.armed && !s.paused) {
        this.pause(slot);
        this.armed(slot);
      }
      for (const watcher of [...this.rivalWatchers]) watcher(slot);
    });
    createInterface({ input: stderr }).on("line", (line) => {
      child.recent.push(line);
      if (child.recent.length > 200) child.recent.shift();
    });
    void child.exited.then((code) => {
      markFailed(new TortureError(`worker ${worker} exited (${code}) before it was ready\n${child.tail()}`));
      // Exit code 0: the worker reached its deadline or operation limit, which is not a crash.
      if (s.child !== child || s.expectedExit || this.stopping || code === 0) return;
      this.options.onCrash?.(worker, code, child.tail());
      s.crashes++;
      if (s.crashes <= (this.options.maxRestarts ?? 20)) void this.spawn(slot);
    });
    if (deadline !== "stdin") markReady();
    return ready;
  }
}

function nextPhase(phase: Phase, e: HistoryEvent): Phase {
  if (e.t === "invoke") {
    if (e.op === "lock") return "locking";
    if (e.op === "write") return "writing";
    if (e.op === "unlock") return "unlocking";
    return phase;
  }
  if (phase === "locking") return e.t === "ok" ? "holding" : "idle";
  if (phase === "holding" && e.t === "ok") return "read-done";
  if (phase === "unlocking") return "idle";
  return phase;
}
