/**
 * Prints events as they happen, in time order. Events from different sources (the clients' pipes, the
 * lock service's watch, the storage's audit log) arrive a few milliseconds out of order, and the lock
 * service's events are named after their owner only once the owner's report is in; so each event is
 * held back briefly, then printed with everything known by then.
 */
import { attributeLockEvents } from "./attribute.js";
import { byTime, type DemoEvent } from "./events.js";

/** A live printer. `push` events, `close` at the end to print the rest. */
export class LiveLog {
  private readonly all: DemoEvent[] = [];
  private readonly arrivedAt: number[] = [];
  private readonly printed = new Set<number>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param print receives each event (owner-attributed) once, in time order.
   * @param holdMs how long an event waits for earlier ones, default 400 ms.
   */
  constructor(
    private readonly print: (event: DemoEvent) => void,
    private readonly holdMs = 400,
  ) {}

  /** Adds an event; it is printed about `holdMs` later. */
  push(event: DemoEvent): void {
    this.all.push(event);
    this.arrivedAt.push(Date.now());
    this.timer ??= setTimeout(() => this.flush(false), this.holdMs);
  }

  /** Prints every event not printed yet and stops the timer. Safe to call twice. */
  close(): void {
    this.flush(true);
  }

  private flush(everything: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const cutoff = Date.now() - this.holdMs;
    const attributed = attributeLockEvents(this.all);
    const due: DemoEvent[] = [];
    attributed.forEach((e, i) => {
      if (this.printed.has(i) || (!everything && (this.arrivedAt[i] ?? 0) > cutoff)) return;
      this.printed.add(i);
      due.push(e);
    });
    for (const e of byTime(due)) this.print(e);
    if (!everything && this.printed.size < this.all.length) {
      this.timer = setTimeout(() => this.flush(false), this.holdMs);
    }
  }
}
