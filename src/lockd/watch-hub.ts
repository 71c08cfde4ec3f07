/**
 * The watchers of a node and the delivery of committed changes to them. A watcher on one key is found
 * by a map lookup (a lock waiter watches one key), watchers on ranges by a scan of the range watchers.
 */
import { inRange, type KeyRange, type KeyString } from "./keys.js";
import { type ChangeEvent, DELETE, PUT, type RevisionChanges } from "./kv.js";

/** What a watcher wants. */
export interface WatchOptions {
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  progressNotify: boolean;
}

/** Receives the events of one revision for one watcher. */
export type Deliver = (watcher: Watcher, rev: bigint, events: ChangeEvent[]) => void;

/** One watcher of a watch stream. */
export class Watcher {
  constructor(
    readonly id: bigint,
    readonly range: KeyRange,
    /** The next revision this watcher is owed. */
    public nextRev: bigint,
    readonly options: WatchOptions,
    readonly deliver: Deliver,
  ) {}

  /** Whether the watcher wants `ev` (its filters). */
  wants(ev: ChangeEvent): boolean {
    return !((ev.type === PUT && this.options.noPut) || (ev.type === DELETE && this.options.noDelete));
  }
}

/** Every watcher of the node. */
export class WatchHub {
  private readonly single = new Map<KeyString, Set<Watcher>>();
  private readonly ranged = new Set<Watcher>();
  private total = 0;

  constructor(readonly maxWatchers: number) {}

  /** Number of registered watchers. */
  get size(): number {
    return this.total;
  }

  /** Registers a synced watcher; false if the node already has `maxWatchers`. */
  add(w: Watcher): boolean {
    if (this.total >= this.maxWatchers) return false;
    this.total++;
    if ("single" in w.range) {
      let set = this.single.get(w.range.single);
      if (!set) {
        set = new Set();
        this.single.set(w.range.single, set);
      }
      set.add(w);
    } else {
      this.ranged.add(w);
    }
    return true;
  }

  /** Unregisters a watcher; does nothing if it is not registered. */
  remove(w: Watcher): void {
    if ("single" in w.range) {
      const set = this.single.get(w.range.single);
      if (!set?.delete(w)) return;
      if (set.size === 0) this.single.delete(w.range.single);
    } else if (!this.ranged.delete(w)) {
      return;
    }
    this.total--;
  }

  /** Delivers committed revisions, in order, to the watchers they concern. */
  dispatch(revisions: RevisionChanges[]): void {
    if (this.total === 0) return;
    for (const { rev, events } of revisions) {
      const byWatcher = new Map<Watcher, ChangeEvent[]>();
      for (const ev of events) {
        const add = (w: Watcher) => {
          if (w.nextRev > rev || !w.wants(ev)) return;
          const list = byWatcher.get(w);
          if (list) list.push(ev);
          else byWatcher.set(w, [ev]);
        };
        for (const w of this.single.get(ev.kv.key) ?? []) add(w);
        for (const w of this.ranged) if (inRange(w.range, ev.kv.key)) add(w);
      }
      for (const [w, evs] of byWatcher) {
        w.nextRev = rev + 1n;
        w.deliver(w, rev, evs);
      }
    }
  }
}
