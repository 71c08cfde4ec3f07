/**
 * Runs a full garbage collection once the thread has been idle for two seconds, after the heap has
 * grown. A burst of writes (filling 100,000 keys, say) leaves its requests' garbage in the old
 * generation, which V8 collects only when the old generation next fills, or through its memory reducer
 * some 10 to 20 s after the burst ends. Until then the process keeps that memory: about 40 MB of lockd's
 * 166 MB after such a fill. An idle lock service still hears its sessions' keep-alives, each a fraction
 * of a millisecond of work; one that comes during the pause (about 0.1 s with 100,000 keys) waits that
 * long, once per burst, far inside any lease's TTL.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** How often the thread's load and heap are looked at, in ms. */
const TICK_MS = 500;
/**
 * Idle ticks in a row before a collection: two seconds. After a collection V8 sizes the heap afresh,
 * so the next burst pays for growing it again; 100 sessions taking 1,000 locks once a second ran 25 to
 * 30% slower with a collection after every other round (after half a second without a request). And
 * between a client's big requests (while it decodes an answer) lockd can be idle for a second.
 */
const IDLE_TICKS = 4;
/** Below this share of a tick spent running, the thread is idle. */
const IDLE_UTILIZATION = 0.05;
/** Growth of the committed heap, above its smallest size since the last collection, that is worth one. */
const GROWTH_BYTES = 24 * 1024 * 1024;

/** A running collector. */
export interface IdleCollector {
  /** Stops looking; no collection runs afterwards. Safe to call twice. */
  stop(): void;
}

type Collect = () => void;

let collect: Collect | undefined;

/**
 * V8's `gc` function, taken from a context made while `--expose-gc` is on; the flag goes off again at
 * once, so no other context gets a `gc` global.
 */
function gcFunction(): Collect {
  if (!collect) {
    setFlagsFromString("--expose-gc");
    try {
      collect = runInNewContext("gc") as Collect;
    } finally {
      setFlagsFromString("--no-expose-gc");
    }
  }
  return collect;
}

/**
 * Starts watching this thread. Every half second it reads the share of time the thread spent running
 * and the committed heap. Once the thread has run under 5% of each tick for two seconds and the heap is
 * 24 MB above its smallest size since the last collection, it runs one full, compacting collection and
 * reports its duration, in seconds, to `onCollect`. Its timer does not keep the process alive. Meant
 * for a thread that runs lockd alone (the lockd worker): in a thread shared with other work, the pause
 * falls on that work too.
 */
export function startIdleCollector(onCollect?: (seconds: number) => void): IdleCollector {
  const gc = gcFunction();
  let floor = getHeapStatistics().total_heap_size;
  let last = performance.eventLoopUtilization();
  let idle = 0;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    idle = busy < IDLE_UTILIZATION ? idle + 1 : 0;
    const committed = getHeapStatistics().total_heap_size;
    floor = Math.min(floor, committed);
    if (idle < IDLE_TICKS || committed - floor < GROWTH_BYTES) return;
    const started = performance.now();
    // A full collection compacts only the most fragmented pages, a few MB of them, and the pages it
    // leaves hold the memory; this one moves the live objects of every fragmented page so that the rest
    // are freed. For this collection only: V8 reads the flag as it collects, and its own collections keep
    // their heuristics.
    setFlagsFromString("--compact-on-every-full-gc");
    try {
      gc();
    } finally {
      setFlagsFromString("--no-compact-on-every-full-gc");
    }
    onCollect?.((performance.now() - started) / 1000);
    floor = getHeapStatistics().total_heap_size;
    idle = 0;
    // The collection's own time is not load.
    last = performance.eventLoopUtilization();
  }, TICK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
