/**
 * The ways the seed's client 1 stops between taking the lock and writing. All but `sigstop` are
 * synchronous: the event loop does not turn, so keep-alives stop too — a true stop-the-world, like a
 * long GC pause, not an `await`.
 */
import { readSync } from "node:fs";
import { isatty } from "node:tty";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { BadPauseError, PauseTimeoutError } from "./errors.js";

/** A pause mode, as `--pause` names it. */
export type PauseMode =
  | { kind: "none" }
  /** A synchronous read of standard input, raw when it is a terminal. */
  | { kind: "keypress" }
  /** Allocate `garbage` objects and force full collections, all synchronously. */
  | { kind: "gc"; garbage: number }
  /** Block the thread for `ms` (a synchronous wait; timers and I/O do not run). */
  | { kind: "block"; ms: number }
  /** Wait (event loop running) until someone stops this process with SIGSTOP and continues it. */
  | { kind: "sigstop" };

/** What a pause measured. */
export interface PauseResult {
  /** How long the process was stopped, by its own clock. */
  pausedMs: number;
  /** A short human account, e.g. `3 collections, longest 60 ms`. */
  detail: string;
  /** The person pressed Ctrl-C during a keypress pause. */
  interrupted: boolean;
}

/** The seed's nrGarbageObjects default. */
export const DEFAULT_GARBAGE = 1_000_000;
const MAX_BLOCK_MS = 600_000;
const MAX_GARBAGE = 50_000_000;

/**
 * Parses `--pause` (`none`, `keypress`, `sigstop`, `gc`, or a duration `3s`, `1.5s`, `500ms`). `garbage`
 * is `--garbage` for `gc`. Throws `BadPauseError` for anything else.
 */
export function parsePause(text: string, garbage?: string): PauseMode {
  if (garbage !== undefined && text !== "gc") throw new BadPauseError(`${text} --garbage ${garbage}`);
  if (text === "none" || text === "keypress" || text === "sigstop") return { kind: text };
  if (text === "gc") {
    if (garbage === undefined) return { kind: "gc", garbage: DEFAULT_GARBAGE };
    if (!/^\d+$/.test(garbage)) throw new BadPauseError(`gc --garbage ${garbage}`);
    const n = Number(garbage);
    if (n < 1 || n > MAX_GARBAGE) throw new BadPauseError(`gc --garbage ${garbage}`);
    return { kind: "gc", garbage: n };
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(text);
  if (!m) throw new BadPauseError(text);
  const ms = Math.round(Number(m[1]) * (m[2] === "s" ? 1000 : 1));
  if (ms < 1 || ms > MAX_BLOCK_MS) throw new BadPauseError(text);
  return { kind: "block", ms };
}

/** The mode as `--pause` spells it. */
export function pauseFlag(mode: PauseMode): string {
  if (mode.kind === "block") return mode.ms % 1000 === 0 ? `${mode.ms / 1000}s` : `${mode.ms}ms`;
  return mode.kind;
}

// A cell nobody notifies: Atomics.wait on it is a plain synchronous sleep of the whole thread.
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Blocks the thread for `ms`. Nothing else in this process runs meanwhile: no timers, no I/O, no
 * keep-alives. Cannot be aborted.
 */
export function blockPause(ms: number): PauseResult {
  const start = performance.now();
  let left = ms;
  while (left > 0) {
    sleepSync(left);
    left = ms - (performance.now() - start);
  }
  return { pausedMs: Math.round(performance.now() - start), detail: "thread blocked", interrupted: false };
}

/**
 * Reads one key from standard input synchronously (raw mode on a terminal, so any key counts and
 * Enter is not needed). The whole process stands still until then. End of input resumes too. Ctrl-C
 * is reported as `interrupted`. Cannot be aborted.
 */
export function keypressPause(): PauseResult {
  const start = performance.now();
  const tty = isatty(0);
  if (tty) process.stdin.setRawMode(true);
  try {
    const buf = Buffer.alloc(64);
    for (;;) {
      let n: number;
      try {
        n = readSync(0, buf, 0, buf.length, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A non-blocking descriptor: keep the thread stopped, ask again shortly.
        if (code === "EAGAIN") {
          sleepSync(10);
          continue;
        }
        if (code === "EOF") n = 0;
        else throw err;
      }
      const pausedMs = Math.round(performance.now() - start);
      if (n === 0) return { pausedMs, detail: "end of input", interrupted: false };
      return { pausedMs, detail: "key pressed", interrupted: buf[0] === 3 };
    }
  } finally {
    if (tty) {
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
  }
}

let gcFunction: (() => void) | undefined;

/** `global.gc` without `--expose-gc` on the command line: set the flag, then take it from a new context. */
function forceGc(): () => void {
  if (gcFunction) return gcFunction;
  setFlagsFromString("--expose-gc");
  gcFunction = runInNewContext("gc") as () => void;
  return gcFunction;
}

/** The most forced collections one gc pause makes while it tries to last `atLeastMs`. */
const MAX_COLLECTIONS = 200;

/**
 * Allocates `garbage` small objects, keeps them alive through forced full collections (each must mark
 * all of them: three, or more until `atLeastMs` have passed, at most 200), then drops them and collects
 * once more — all synchronously, so the process is stopped for the whole time. Reports each
 * collection's length. Cannot be aborted.
 */
export function gcPause(garbage: number, atLeastMs = 0): PauseResult {
  const gc = forceGc();
  const start = performance.now();
  let live: { n: number; s: string }[] | null = new Array(garbage);
  for (let i = 0; i < garbage; i++) live[i] = { n: i, s: `garbage ${i}` };
  const collections: number[] = [];
  const timed = () => {
    const t = performance.now();
    gc();
    collections.push(performance.now() - t);
  };
  for (
    let round = 0;
    round < 3 || (performance.now() - start < atLeastMs && round < MAX_COLLECTIONS);
    round++
  ) {
    timed();
  }
  live = null;
  timed();
  const pausedMs = Math.round(performance.now() - start);
  const shown = collections.length > 6 ? [...collections.slice(0, 3), ...collections.slice(-2)] : collections;
  const ms =
    shown.map((c) => `${Math.round(c)} ms`).join(", ") + (shown.length < collections.length ? ", …" : "");
  return {
    pausedMs,
    detail: `${garbage} objects, ${collections.length} forced collections (${ms}), ${pausedMs} ms stopped in all`,
    interrupted: false,
  };
}

/**
 * Waits, with the event loop running, until this process has been stopped (SIGSTOP, from outside)
 * and continued (SIGCONT). The stopped time is measured as the largest gap between ticks of a 20 ms
 * timer. Rejects with `PauseTimeoutError` after `timeoutMs`, or with the signal's reason on abort;
 * removes its listeners and timers either way.
 */
export function sigstopPause(options: { timeoutMs: number; signal?: AbortSignal }): Promise<PauseResult> {
  const { timeoutMs, signal } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const start = Date.now();
    let last = start;
    let maxGap = 0;
    let settleTimer: NodeJS.Timeout | undefined;
    const tick = setInterval(() => {
      const now = Date.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 20);
    const cleanup = () => {
      clearInterval(tick);
      clearTimeout(deadline);
      clearTimeout(settleTimer);
      process.off("SIGCONT", onCont);
      signal?.removeEventListener("abort", onAbort);
    };
    const onCont = () => {
      // The tick timer may run before or after this handler; give it one turn, then take the gap.
      settleTimer = setTimeout(() => {
        const pausedMs = Math.max(maxGap, Date.now() - last);
        cleanup();
        resolve({ pausedMs, detail: "stopped with SIGSTOP, continued with SIGCONT", interrupted: false });
      }, 30);
    };
    const onAbort = () => {
      cleanup();
      reject(signal?.reason);
    };
    const deadline = setTimeout(() => {
      cleanup();
      reject(new PauseTimeoutError(timeoutMs));
    }, timeoutMs);
    process.on("SIGCONT", onCont);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
