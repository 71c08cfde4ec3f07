/**
 * Runs a full garbage collection once the thread has been idle for about six seconds (longer while
 * bursts recur), after the heap has grown. A burst of writes (filling 100,000 keys, say) leaves its requests'
 * garbage in the old generation, which V8 collects only when the old generation next fills, or through
 * its memory reducer some 10 to 20 s after the burst ends. Until then the process keeps that memory:
 * about 40 MB of lockd's 166 MB after such a fill. An idle lock service still hears its sessions'
 * keep-alives, each a fraction of a millisecond of work; one that comes during the pause (about 0.1 s
 * with 100,000 keys) waits that long, once per burst, far inside any lease's TTL.
 */
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** How often the thread's load and heap are looked at, in ms. */
const TICK_MS = 500;
/**
 * Idle ticks in a row before a collection: five seconds at first. A full collection costs the next
 * burst: 100 sessions taking 1,000 locks in pairs of rounds about four seconds apart ran 1,803 and
 * 2,139 locks/s in the two pairs after a collection, 3,300 to 4,600 in the others (with the collection
 * made non-compacting, the same; with none, 2,799 and 3,248 there, the rest of the gap being warm-up).
 * A second burst within a few seconds is common (a batch job's waves, a rolling restart's clients);
 * memory given back after five calm seconds instead of two costs nothing that matters. Half a second
 * was too short even for a single client: between its big requests (while it decodes an answer) lockd
 * is idle for a second, and a collection there falls on the next.
 */
const IDLE_TICKS = 10;
/**
 * A full collection while nothing is in flight lets V8 drop the object shapes ("maps") that the last
 * burst's requests had, and the next burst's code, compiled for those shapes, deoptimizes: 23 and 28
 * deoptimizations in the pair of rounds after a collection, none or two in the others, mostly "wrong
 * map" in Node's stream and HTTP/2 code (keeping maps for 16 collections, a V8 flag, changed nothing).
 * V8's own memory-reducing collections, 10 to 20 s after a burst, do the same. 100 sessions taking
 * 1,000 locks every three seconds ran 25 to 40% slower with a collection after every other round, and
 * `bench:lockd`'s 1,000-lock row fell from 0.88× etcd to 0.67–0.85×. Memory that bursts keep needing is
 * better kept: a collection within this long of the one before doubles the idle time the next one
 * waits for, up to `MAX_IDLE_TICKS`; one after a longer calm brings it back to `IDLE_TICKS`.
 */
const RECUR_MS = 60_000;
/**
 * How long before the full collection a scavenge runs, in ms. A burst grows the worker's young
 * generation to its 16 MB, and V8 shrinks it back (to 1 MB) at a collection only when allocation over
 * the last five seconds, as measured from one collection to the next, was below about 1 KB per ms. A
 * collection five seconds after a burst often still counted the burst's last allocations, and the young
 * generation then stayed at 16 MB: 130 to 134 MB at rest after a fill of 100,000 keys instead of 112 to
 * 117, in 5 of 17 fills. A scavenge when the idle time begins (about a millisecond: little is live) ends
 * the burst's measure, so the full collection, this long after it, finds a quiet five seconds.
 */
const QUIET_MS = 5_500;
/** The longest idle time a collection waits for, in ticks: 40 seconds. */
const MAX_IDLE_TICKS = 80;
/** Below this share of a tick spent running, the thread is idle. */
const IDLE_UTILIZATION = 0.05;
/** Growth of the committed heap, above its smallest size since the last collection, that is worth one. */
const GROWTH_BYTES = 24 * 1024 * 1024;
/**
 * Above this many live keys, no collection: its pause grows with what is live (0.12 s with 100,000
 * keys, 0.21 s with 200,000, 0.27 s with 300,000), and a pause that long would hold back keep-alives
 * of a lease with a TTL of 1 s, renewed every third of a second. V8's own, incremental collections
 * take care of such a heap. (The heap in use is no measure of what is live: after 100,000 keys were
 * written over, 122 MB were in use and 46 MB live.)
 */
const MAX_KEYS = 150_000;

/** A running collector. */
export interface IdleCollector {
  /** Stops looking; no collection runs afterwards. Safe to call twice. */
  stop(): void;
}

/** V8's `gc`: a full collection, or a scavenge of the young generation alone with `{ type: "minor" }`. */
type Collect = (options?: { type: "minor" }) => void;

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
 * and the committed heap. Once the heap is 24 MB above its smallest size since the last collection and
 * `keys()` (the live keys) is at most 150,000, it runs a scavenge at the first tick in which the thread
 * ran under 5% of the time, and, once that has lasted five seconds (longer when collections recur, see
 * `RECUR_MS`) and `QUIET_MS` have passed since the scavenge, one full, compacting collection, whose
 * duration, in seconds, it reports to `onCollect`. Its timer does not keep the process alive; a
 * second call starts a second, independent collector (lockd starts one per node). Meant for a thread
 * that runs lockd alone (the lockd worker): in a thread shared with other work, the pause falls on that
 * work too.
 */
export function startIdleCollector(keys: () => number, onCollect?: (seconds: number) => void): IdleCollector {
  const gc = gcFunction();
  let floor = getHeapStatistics().total_heap_size;
  let last = performance.eventLoopUtilization();
  let idle = 0;
  let needed = IDLE_TICKS;
  let lastAt = Number.NEGATIVE_INFINITY;
  let scavengedAt: number | undefined;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    idle = busy < IDLE_UTILIZATION ? idle + 1 : 0;
    if (idle === 0) scavengedAt = undefined;
    const committed = getHeapStatistics().total_heap_size;
    floor = Math.min(floor, committed);
    if (idle === 0 || committed - floor < GROWTH_BYTES || keys() > MAX_KEYS) return;
    if (scavengedAt === undefined) {
      gc({ type: "minor" });
      scavengedAt = performance.now();
    }
    if (idle < needed || performance.now() - scavengedAt < QUIET_MS) return;
    const started = performance.now();
    needed = started - lastAt < RECUR_MS ? Math.min(needed * 2, MAX_IDLE_TICKS) : IDLE_TICKS;
    lastAt = started;
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
    scavengedAt = undefined;
    // The collection's own time is not load.
    last = performance.eventLoopUtilization();
  }, TICK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
