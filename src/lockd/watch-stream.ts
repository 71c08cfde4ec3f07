/**
 * One Watch stream: creates, cancels and progress requests from the client; events, progress
 * notifications and cancellations to it. Requests are handled in arrival order, each once no write is
 * waiting for its commit, so a new watcher's start revision and catch-up never see uncommitted changes.
 */
import type * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type { WatchCreateRequest, WatchRequest, WatchResponse } from "../proto/index.js";
import { FilterType, fromWire, toWire } from "../proto/index.js";
import { inRange, keyRange } from "./keys.js";
import { type ChangeEvent, eventToWire } from "./kv.js";
import type { Store } from "./store.js";
import { Watcher, type WatchHub } from "./watch-hub.js";

/** Limits of a watch stream. */
export interface WatchLimits {
  /** Most watchers on one stream. */
  perStream: number;
  /** Interval of progress notifications to watchers that asked for them, in ms. */
  progressMs: number;
  /** Most responses queued for a client that does not read; past it the stream is ended. */
  maxQueued: number;
}

/** Revisions sent in one catch-up response at most, as etcd's watch batches. */
const CATCH_UP_REVS = 1000n;

type Call = grpc.ServerDuplexStream<WatchRequest, WatchResponse>;

/** Serves one Watch call until either side ends it. */
export class WatchStream {
  private readonly watchers = new Map<bigint, Watcher>();
  private nextId = 0n;
  private closed = false;
  private progressTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: Call,
    private readonly store: Store,
    private readonly hub: WatchHub,
    private readonly limits: WatchLimits,
  ) {
    call.on("data", (req: WatchRequest) => this.store.whenIdle(() => this.handle(req)));
    call.on("end", () => {
      this.close();
      call.end();
    });
    call.on("error", () => this.close());
    call.on("cancelled", () => this.close());
    call.on("close", () => this.close());
  }

  private response(fields: Partial<WatchResponse>, rev?: bigint): WatchResponse {
    return {
      header: this.store.header(rev),
      watch_id: "0",
      created: false,
      canceled: false,
      compact_revision: "0",
      cancel_reason: "",
      fragment: false,
      events: [],
      ...fields,
    };
  }

  private send(res: WatchResponse): void {
    if (this.closed || !this.call.writable) return;
    if (this.call.writableLength > this.limits.maxQueued) {
      this.call.emit("error", {
        code: status.RESOURCE_EXHAUSTED,
        details: "lockd: watch stream is not read",
      });
      this.close();
      return;
    }
    this.call.write(res);
  }

  private handle(req: WatchRequest): void {
    if (this.closed) return;
    if (req.create_request) this.create(req.create_request);
    else if (req.cancel_request) this.cancel(fromWire(req.cancel_request.watch_id));
    else if (req.progress_request) {
      // etcd 3.4: a progress answer belongs to no watcher.
      this.send(this.response({ watch_id: "-1" }));
    }
  }

  private refuse(id: bigint, reason: string): void {
    this.send(this.response({ watch_id: toWire(id), created: true, canceled: true, cancel_reason: reason }));
  }

  private create(c: WatchCreateRequest): void {
    // etcd: an empty key is the smallest key, "\0".
    const key = c.key && c.key.length > 0 ? c.key : Buffer.from([0]);
    const range = keyRange(key, c.range_end);
    if ("start" in range && range.end !== null && range.start >= range.end) {
      this.refuse(-1n, "mvcc: watcher range is empty");
      return;
    }
    let id = fromWire(c.watch_id);
    if (id === 0n) {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    } else if (this.watchers.has(id)) {
      this.refuse(-1n, "mvcc: duplicate watch ID provided on the WatchStream");
      return;
    }
    if (this.watchers.size >= this.limits.perStream || this.hub.size >= this.hub.maxWatchers) {
      this.refuse(id, "lockd: too many watchers");
      return;
    }
    const filters = c.filters ?? [];
    const start = fromWire(c.start_revision);
    const watcher = new Watcher(
      id,
      range,
      start > 0n ? start : this.store.rev + 1n,
      {
        prevKv: Boolean(c.prev_kv),
        noPut: filters.includes(FilterType.NOPUT),
        noDelete: filters.includes(FilterType.NODELETE),
        progressNotify: Boolean(c.progress_notify),
      },
      (w, rev, events) => this.deliver(w, rev, events),
    );
    this.send(this.response({ watch_id: toWire(id), created: true }));
    if (start > 0n && start < this.store.compactRev) {
      // As etcd: the watcher is created, then cancelled with the compacted revision.
      this.send(
        this.response(
          { watch_id: toWire(id), canceled: true, compact_revision: toWire(this.store.compactRev) },
          0n,
        ),
      );
      return;
    }
    this.catchUp(watcher);
    this.watchers.set(id, watcher);
    this.hub.add(watcher);
    if (watcher.options.progressNotify) this.startProgress();
  }

  private catchUp(w: Watcher): void {
    const current = this.store.rev;
    for (let from = w.nextRev; from <= current; from += CATCH_UP_REVS) {
      const to = from + CATCH_UP_REVS - 1n < current ? from + CATCH_UP_REVS - 1n : current;
      const events: ChangeEvent[] = [];
      for (const { events: evs } of this.store.history(from, to, w.options.prevKv)) {
        for (const ev of evs) if (inRange(w.range, ev.kv.key) && w.wants(ev)) events.push(ev);
      }
      if (events.length > 0) {
        this.send(
          this.response({
            watch_id: toWire(w.id),
            events: events.map((ev) => eventToWire(ev, w.options.prevKv, this.store.loadValue)),
          }),
        );
      }
    }
    if (w.nextRev <= current) w.nextRev = current + 1n;
  }

  private deliver(w: Watcher, rev: bigint, events: ChangeEvent[]): void {
    this.send(
      this.response(
        {
          watch_id: toWire(w.id),
          events: events.map((ev) => eventToWire(ev, w.options.prevKv, this.store.loadValue)),
        },
        rev,
      ),
    );
  }

  private cancel(id: bigint): void {
    const w = this.watchers.get(id);
    if (!w) return;
    this.watchers.delete(id);
    this.hub.remove(w);
    this.send(this.response({ watch_id: toWire(id), canceled: true }));
  }

  private startProgress(): void {
    if (this.progressTimer) return;
    this.progressTimer = setInterval(() => {
      this.store.whenIdle(() => {
        for (const w of this.watchers.values()) {
          if (w.options.progressNotify) this.send(this.response({ watch_id: toWire(w.id) }));
        }
      });
    }, this.limits.progressMs);
    this.progressTimer.unref();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.progressTimer);
    for (const w of this.watchers.values()) this.hub.remove(w);
    this.watchers.clear();
  }
}
