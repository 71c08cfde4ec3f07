/**
 * Group commit: the decisions submitted during one event-loop turn run in one transaction, committed
 * once; each caller's promise settles only after that commit, so a reply is never sent for something
 * that is not in the database yet. The decisions of a batch are made in arrival order, each against the
 * fence state the ones before it left: the same serial order as one transaction each.
 *
 * A transaction takes at most `MAX_BATCH` decisions and `MAX_BATCH_BYTES` of values; a longer queue is
 * committed in several, one per turn, so a burst cannot hold the event loop. If a batch's transaction
 * fails (it rolled back whole), its decisions are made again one transaction each, in the same order, so
 * one decision that SQLite refuses fails alone.
 */
import type { Decision, Outcome, Store } from "./store.js";

/** Most decisions in one transaction. */
export const MAX_BATCH = 256;
/** Most value bytes in one transaction (a single larger value still goes, alone). */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

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
   * Resolves with the outcome once the decision is committed; rejects with the store's error if its
   * transaction fails (then nothing of it was written), or if the batcher is closed.
   */
  submit(decision: Decision): Promise<Outcome> {
    if (this.closed) return Promise.reject(new Error("the store is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ decision, resolve, reject });
      this.scheduled ??= setImmediate(() => this.turn());
    });
  }

  /** Commits everything queued now, in bounded transactions. Called before a fence reset, and by `close`. */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.queue.length > 0) this.commit(this.take());
  }

  /** Commits what is queued and refuses anything later. Safe to call twice. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  /** One turn's transaction; what is left waits for the next turn. */
  private turn(): void {
    this.scheduled = undefined;
    this.commit(this.take());
    if (this.queue.length > 0) this.scheduled = setImmediate(() => this.turn());
  }

  /** Takes the longest prefix of the queue within the bounds (at least one decision). */
  private take(): Pending[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < MAX_BATCH) {
      const d = (this.queue[count] as Pending).decision;
      bytes += d.op === "write" ? d.value.length : 0;
      if (count > 0 && bytes > MAX_BATCH_BYTES) break;
      count++;
    }
    if (count === this.queue.length) {
      const batch = this.queue;
      this.queue = [];
      return batch;
    }
    return this.queue.splice(0, count);
  }

  private commit(batch: Pending[]): void {
    if (batch.length === 0) return;
    let outcomes: Outcome[];
    try {
      outcomes = this.store.transaction(() => batch.map((p) => this.store.decide(p.decision)));
    } catch (err) {
      if (batch.length === 1) (batch[0] as Pending).reject(err);
      else for (const p of batch) this.commit([p]);
      return;
    }
    for (let i = 0; i < batch.length; i++) (batch[i] as Pending).resolve(outcomes[i] as Outcome);
  }
}
