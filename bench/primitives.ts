/**
 * `npm run bench:primitives`: contention on each primitive of the lock client, 64 waiters (each with its
 * own session) taking and giving back one lock in a loop, on a local three-member etcd cluster and on
 * lockd, both started here on free ports and stopped after, in one run. The mutex row is the baseline.
 * Prints hand-overs per second, wake-ups per hand-over (watch events delivered to waiters, counted from
 * the client's `LOCK_CHANNEL`) and FIFO violations. Bounded: `--seconds` per row (default 3, at most 10).
 */
import diagnostics_channel from "node:diagnostics_channel";
import { setMaxListeners } from "node:events";
import { parseArgs } from "node:util";
import {
  AbortedError,
  connect,
  LOCK_CHANNEL,
  type Lock,
  type LockEvent,
  type Session,
} from "../src/client/index.js";
import { startEtcdCluster, startLockd } from "../src/testkit/index.js";

const WAITERS = 64;
const PERMITS = 4;
/** One writer in this many rwlock workers; the rest read. */
const WRITER_EVERY = 4;

const { values } = parseArgs({ options: { seconds: { type: "string", default: "3" } } });
const durationMs = Number(values.seconds) * 1000;
if (!(durationMs > 0 && durationMs <= 10_000)) {
  console.error("--seconds must be a number from 0 to 10 (per row)");
  process.exit(2);
}

type Primitive = "mutex" | "election" | "rwlock" | "semaphore";

interface Row {
  backend: string;
  primitive: string;
  handovers: number;
  perSecond: number;
  wakeupsPerHandover: number;
  fifoViolations: number;
}

/**
 * FIFO check: an acquisition is a violation if a waiter the server already knew was waiting (its first
 * request came back without the lock) before this one even asked is still waiting, and this one could not
 * rightly go first. Readers of the rwlock may go together, so a reader overtaking a reader is no violation.
 */
class FifoCheck {
  private readonly waiting = new Map<
    number,
    { calledAt: number; queuedAt: number | undefined; shared: boolean }
  >();
  violations = 0;

  called(worker: number, shared: boolean): void {
    this.waiting.set(worker, { calledAt: performance.now(), queuedAt: undefined, shared });
  }

  queued(worker: number): void {
    const w = this.waiting.get(worker);
    if (w && w.queuedAt === undefined) w.queuedAt = performance.now();
  }

  acquired(worker: number): void {
    const me = this.waiting.get(worker);
    this.waiting.delete(worker);
    if (!me) return;
    for (const other of this.waiting.values()) {
      if (me.shared && other.shared) continue;
      if (other.queuedAt !== undefined && other.queuedAt < me.calledAt) {
        this.violations++;
        return;
      }
    }
  }
}

/** Takes the primitive once for worker `i` through `session`; resolves to what gives it back. */
function taker(primitive: Primitive, name: string, session: Session, i: number) {
  const shared = primitive === "rwlock" && i % WRITER_EVERY !== 0;
  const take = async (signal: AbortSignal): Promise<() => Promise<void>> => {
    if (primitive === "election") {
      const l = await session.election(name).campaign(`w${i}`, { signal });
      return () => l.resign();
    }
    let lock: Lock;
    if (primitive === "mutex") lock = await session.mutex(name).lock({ signal });
    else if (primitive === "rwlock") {
      lock = shared
        ? await session.rwlock(name).readLock({ signal })
        : await session.rwlock(name).writeLock({ signal });
    } else lock = await session.semaphore(name, PERMITS).acquire({ signal });
    return () => lock.unlock();
  };
  return { take, shared };
}

async function contention(backend: string, endpoints: string[], primitive: Primitive): Promise<Row> {
  const name = `/bench/primitives/${primitive}`;
  const client = connect({ endpoints });
  const sessions = await Promise.all(Array.from({ length: WAITERS }, () => client.session({ ttl: 30 })));
  const workerOfLease = new Map(sessions.map((s, i) => [s.leaseId.toString(16), i]));
  const workerOf = (key: string) => workerOfLease.get(key.slice(key.lastIndexOf("/") + 1)) ?? -1;
  const fifo = new FifoCheck();
  let wakes = 0;
  let handovers = 0;
  const queuedWorkers = new Set<number>();
  // The semaphore's line is a mutex named `<name>/queue`: its events belong to the semaphore too.
  const mine = (e: LockEvent) => e.name === name || e.name === `${name}/queue`;
  const onEvent = (message: unknown) => {
    const e = message as LockEvent;
    if (!mine(e)) return;
    const worker = workerOf(e.key);
    if (e.event === "wake") wakes++;
    else if (e.event === "queued") {
      queuedWorkers.add(worker);
      fifo.queued(worker);
    }
  };
  diagnostics_channel.subscribe(LOCK_CHANNEL, onEvent);
  const end = new AbortController();
  setMaxListeners(0, end.signal);
  let acquisitions = 0;
  const timer = setTimeout(() => end.abort(), durationMs);
  try {
    await Promise.all(
      sessions.map(async (session, i) => {
        const { take, shared } = taker(primitive, name, session, i);
        while (!end.signal.aborted) {
          fifo.called(i, shared);
          queuedWorkers.delete(i);
          let release: () => Promise<void>;
          try {
            release = await take(end.signal);
          } catch (err) {
            if (err instanceof AbortedError || end.signal.aborted) return;
            throw err;
          }
          fifo.acquired(i);
          if (!end.signal.aborted) {
            acquisitions++;
            if (queuedWorkers.has(i)) handovers++;
          }
          await release();
        }
      }),
    );
  } finally {
    clearTimeout(timer);
    diagnostics_channel.unsubscribe(LOCK_CHANNEL, onEvent);
    await client.close();
  }
  return {
    backend,
    primitive:
      primitive === "semaphore"
        ? `semaphore (${PERMITS} permits)`
        : primitive === "rwlock"
          ? `rwlock (1 writer in ${WRITER_EVERY})`
          : primitive,
    handovers: acquisitions,
    perSecond: acquisitions / (durationMs / 1000),
    wakeupsPerHandover: handovers === 0 ? 0 : wakes / handovers,
    fifoViolations: fifo.violations,
  };
}

const rows: Row[] = [];
const primitives: Primitive[] = ["mutex", "election", "rwlock", "semaphore"];
for (const backend of ["etcd", "lockd"] as const) {
  const server = backend === "etcd" ? await startEtcdCluster({ size: 3 }) : await startLockd();
  try {
    for (const p of primitives) rows.push(await contention(backend, server.endpoints, p));
  } finally {
    await server.stop();
  }
}

const widths = [8, 26, 12, 14, 20, 16];
const line = (cells: string[]) =>
  cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
const out = [
  `fencelock primitives under contention — ${WAITERS} waiters, each its own session, ${values.seconds} s per row`,
  "etcd: local 3-member cluster (testkit); lockd: one process, data on disk (testkit). Baseline: the mutex row.",
  "",
  line(["backend", "primitive", "acquisitions", "acquisitions/s", "wake-ups/hand-over", "FIFO violations"]),
];
for (const r of rows) {
  out.push(
    line([
      r.backend,
      r.primitive,
      String(r.handovers),
      r.perSecond.toFixed(1),
      r.wakeupsPerHandover.toFixed(2),
      String(r.fifoViolations),
    ]),
  );
}
out.push("");
out.push(
  "wake-ups/hand-over: watch events delivered to waiters per acquisition that had to wait. The mutex,",
);
out.push(
  "  election and writers wait on one key (target 1.00). rwlock readers released together by one writer",
);
out.push("  each get that writer's event. A semaphore waiter wakes once to become the head of the line, and");
out.push("  once more only if every permit is taken then, on the release of one (so between 1.00 and 2.00).");
out.push(
  "FIFO violation: an acquisition that overtook a waiter the server already knew was waiting before the",
);
out.push("  winner even asked (readers overtaking readers excepted; target 0).");
console.log(out.join("\n"));
