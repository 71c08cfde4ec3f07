/**
 * Group commit: the decisions submitted during one event-loop turn run in one SQLite transaction,
 * committed once; each caller's promise settles only after that commit, so a reply is never sent for
 * something that is not in the database yet.
 */
import type { Decision, Outcome, Store } from "./store.js";

interface Pending {
  decision: Decision;
  resolve: (outcome: Outcome) => void;
  reject: (err: unknown) => void;
}

/** Queues decisions and commits them once per turn, in arrival order. */
export class Batcher {
  private queue: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly store: Store) {}

  /**
   * Resolves with the outcome once the decision is committed; rejects if the transaction fails (then
   * nothing of its batch was written) or the batcher is closed.
   */
  submit(decision: Decision): Promise<Outcome> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ decision, resolve, reject });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  /** Commits what is queued now. Called by the timer, and by `close`. */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    let outcomes: Outcome[];
    try {
      outcomes = this.store.transaction(() => batch.map((p) => this.store.decide(p.decision)));
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    for (let i = 0; i < batch.length; i++) (batch[i] as Pending).resolve(outcomes[i] as Outcome);
  }

  /** Commits what is queued and refuses anything later. Safe to call twice. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
