/**
 * One waiting operation's stop conditions in one place: the caller's signal, its timeout and the end of
 * the session. Gives a single signal to pass down and the typed error that says which one fired.
 */
import { AbortedError, InvalidArgumentError, LockTimeoutError } from "./errors.js";
import type { LockStatus } from "./lock-status.js";

/** What a waiting call takes. */
export interface WaitOptions {
  /** Aborts the wait; it then rejects with `AbortedError` whose `cause` is the signal's reason. */
  signal?: AbortSignal;
  /** Gives up after this many ms with `LockTimeoutError`. No timeout if left out. */
  timeoutMs?: number;
  /**
   * Called when `lock()` has waited `waitingAfterMs` (default 1000) with who holds the lock and when its
   * lease expires if not renewed, and again each time the key it waits behind changes after that. Errors
   * of the read behind it are ignored; what the callback throws too.
   */
  onWaiting?: (status: LockStatus) => void;
  /** When to call `onWaiting` first, in ms of waiting; default 1000. */
  waitingAfterMs?: number;
}

/** The combined stop conditions of one call. Call `dispose()` when the call ends. */
export class Wait {
  private readonly controller: AbortController | undefined;
  /** Aborts when the caller's signal aborts, the timeout passes, or the session ends. */
  readonly signal: AbortSignal;
  /** Absolute deadline (epoch ms), or undefined. */
  readonly deadline: number | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private timeoutError: LockTimeoutError | undefined;
  private readonly timeoutMs: number | undefined;
  private timedOut = false;
  private readonly onAbort = () => this.controller?.abort();

  constructor(
    private readonly what: string,
    private readonly lockName: string,
    private readonly options: WaitOptions,
    private readonly sessionSignal: AbortSignal,
  ) {
    const { timeoutMs } = options;
    // Without a signal or a timeout of the caller's, only the session can stop the wait.
    if (timeoutMs === undefined && options.signal === undefined) {
      this.signal = sessionSignal;
      return;
    }
    const controller = new AbortController();
    this.controller = controller;
    this.signal = controller.signal;
    if (timeoutMs !== undefined) {
      if (!(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
        throw new InvalidArgumentError(`timeoutMs must be a number ≥ 0, got ${timeoutMs}`);
      }
      this.timeoutMs = timeoutMs;
      this.deadline = Date.now() + timeoutMs;
      this.timer = setTimeout(() => {
        this.timedOut = true;
        controller.abort();
      }, timeoutMs);
    }
    options.signal?.addEventListener("abort", this.onAbort, { once: true });
    sessionSignal.addEventListener("abort", this.onAbort, { once: true });
    if (options.signal?.aborted || sessionSignal.aborted) controller.abort();
  }

  /** The error for the condition that fired, or undefined while none has. Session end wins. */
  reason(): unknown {
    if (!this.signal.aborted) return undefined;
    if (this.sessionSignal.aborted) return this.sessionSignal.reason;
    // Made when first needed (a stack trace costs microseconds, and most waits end in time); it is made
    // in the waiting call's continuation, so its async stack still names the caller that waited.
    if (this.timedOut) {
      this.timeoutError ??= new LockTimeoutError(this.lockName, this.timeoutMs as number);
      return this.timeoutError;
    }
    return new AbortedError(this.what, this.options.signal?.reason);
  }

  /** Throws `reason()` if a stop condition fired. */
  check(): void {
    if (this.signal.aborted) throw this.reason();
  }

  /** Removes the listeners and the timer. Safe to call twice. */
  dispose(): void {
    clearTimeout(this.timer);
    this.options.signal?.removeEventListener("abort", this.onAbort);
    this.sessionSignal.removeEventListener("abort", this.onAbort);
  }
}
