/**
 * The local FIFO of `lock()` calls on one name through one session. They share one lease and so one etcd
 * key, which etcd cannot tell apart; without this queue two of them would both believe they hold the lock.
 */
import { AbortedError } from "./errors.js";

/** Turn-taking for one name within one session, in call order. */
export class LocalQueue {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

  /** True when nobody holds or waits for a turn. */
  get idle(): boolean {
    return !this.busy && this.waiting.length === 0;
  }

  /** Takes the turn if nobody holds it or waits for it; returns whether it did. */
  tryEnter(): boolean {
    if (!this.idle) return false;
    this.busy = true;
    return true;
  }

  /**
   * Resolves when it is the caller's turn. Rejects with `AbortedError` (cause: the signal's reason) if
   * `signal` aborts first; the caller then leaves the line and never gets a turn.
   */
  enter(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new AbortedError("local queue", signal.reason));
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const turn = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(turn);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new AbortedError("local queue", signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(turn);
    });
  }

  /** Ends the current turn and gives the next one to the longest waiting caller. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy = false;
  }
}
