/**
 * One torture worker's loop, run inside its own process: lock → read the counter → add one → write it →
 * unlock, again and again, printing every operation's invoke and outcome as history events. The worker
 * deliberately does not consult the lock's loss signal before writing: a process paused right after such
 * a check would not either, and the point is to see what fencing alone guarantees.
 */
import { connect, type Session } from "../client/index.js";
import type { Mode } from "./checker.js";
import { type CounterStore, openCounterStore, type ResourceKind } from "./counter.js";
import { decodeValue, encodeValue, type HistoryEvent, type OpKind, tokenToEvent } from "./history.js";
import { createPrng } from "./prng.js";

/**
 * How keys map to locks: one lock (and one fence) per key, one lock and fence for all keys, or an election
 * whose leader (its epoch the token) works on every key behind one fence.
 */
export type LockScope = "per-key" | "one" | "election";

/** What a worker is told. */
export interface WorkerOptions {
  /** `w<slot>.<incarnation>`. */
  worker: string;
  endpoints: string[];
  /** Where the counters live. */
  resource: ResourceKind;
  /** The storage's URL, PostgreSQL's connection string, or the SQLite file. */
  resourceUrl: string;
  mode: Mode;
  keys: number;
  scope: LockScope;
  /** Lease TTL in seconds. */
  ttl: number;
  seed: string;
  /** At most this many operations. */
  maxOps: number;
  /** Stop starting cycles at this epoch time. */
  deadlineMs: number;
  /** Time spent "computing" between the read and the write, which is where a pause does its damage. */
  thinkMs: number;
  /** Timeout of every read and write of the counter and of every lock wait. */
  opTimeoutMs: number;
  /** Receives each event. */
  emit: (event: HistoryEvent) => void;
  /** Aborted to ask the worker to finish its current cycle and stop. */
  signal: AbortSignal;
}

/** The lock name, fence and storage key of key number `k`. */
export function namesFor(k: number, scope: LockScope): { key: string; lock: string; fence: string } {
  const key = `k${k}`;
  if (scope === "election") return { key, lock: "/torture/election", fence: "torture" };
  return scope === "one"
    ? { key, lock: "/torture/lock", fence: "torture" }
    : { key, lock: `/torture/lock/${key}`, fence: `torture-${key}` };
}

/** What a worker holds while it works: a lock, or leadership of an election; its token and how to let go. */
interface Held {
  token: bigint;
  release(): Promise<void>;
}

function codeOf(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") return err.code;
  return err instanceof Error ? err.name : "ERROR";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the loop until `maxOps`, `deadlineMs` or `signal`. Never throws for a failed operation (it is
 * recorded); resolves after releasing its lock and closing its session and client.
 */
export async function runWorker(o: WorkerOptions): Promise<void> {
  const store: CounterStore = await openCounterStore(o.resource, o.resourceUrl, o.opTimeoutMs);
  const client = connect({ endpoints: o.endpoints, callTimeoutMs: o.opTimeoutMs });
  const rng = createPrng(`worker:${o.seed}:${o.worker}`);
  let nextId = 0;
  let session: Session | undefined;

  const begin = (op: OpKind, fields: Partial<HistoryEvent>): number => {
    const id = ++nextId;
    o.emit({ w: o.worker, id, t: "invoke", at: performance.timeOrigin + performance.now(), op, ...fields });
    return id;
  };
  const end = (id: number, t: HistoryEvent["t"], fields: Partial<HistoryEvent> = {}) => {
    o.emit({ w: o.worker, id, t, at: performance.timeOrigin + performance.now(), ...fields });
  };
  const more = () => !o.signal.aborted && Date.now() < o.deadlineMs && nextId + 4 <= o.maxOps;
  const acquire = async (s: Session, name: string): Promise<Held> => {
    const options = { timeoutMs: o.opTimeoutMs, signal: o.signal };
    if (o.scope === "election") {
      const leadership = await s.election(name).campaign(o.worker, options);
      return { token: leadership.token, release: () => leadership.resign() };
    }
    const held = await s.mutex(name).lock(options);
    return { token: held.token, release: () => held.unlock() };
  };

  try {
    while (more()) {
      if (!session?.isLive()) {
        await session?.close().catch(() => {});
        session = undefined;
        try {
          session = await client.session({ ttl: o.ttl, timeoutMs: o.opTimeoutMs, signal: o.signal });
        } catch {
          await sleep(100);
          continue;
        }
      }
      const { key, lock: lockName, fence } = namesFor(rng.int(o.keys), o.scope);
      const lockId = begin("lock", { lock: lockName });
      let lock: Held;
      try {
        lock = await acquire(session, lockName);
      } catch (err) {
        end(lockId, "fail", { error: codeOf(err) });
        await sleep(20);
        continue;
      }
      const token = lock.token;
      end(lockId, "ok", { token: tokenToEvent(token) });
      try {
        await cycle(key, fence, token);
      } finally {
        const unlockId = begin("unlock", { lock: lockName, token: tokenToEvent(token) });
        try {
          await lock.release();
          end(unlockId, "ok");
        } catch (err) {
          end(unlockId, "info", { error: codeOf(err) });
        }
      }
    }
  } finally {
    await session?.close().catch(() => {});
    await client.close().catch(() => {});
    await store.close();
  }

  async function cycle(key: string, fence: string, token: bigint): Promise<void> {
    const readFenced = o.mode === "fenced";
    const readId = begin("read", { key, fence, token: tokenToEvent(token), fenced: readFenced });
    let text: string | null;
    try {
      text = await store.read(key, fence, readFenced ? token : undefined);
      end(readId, "ok", { value: text });
    } catch (err) {
      end(readId, store.outcomeOf(err), { error: codeOf(err) });
      return;
    }
    const decoded = decodeValue(text);
    if (text !== null && !decoded) return;
    const counter = (decoded?.counter ?? 0) + 1;
    if (o.thinkMs > 0) await sleep(o.thinkMs);
    const writeFenced = o.mode !== "unfenced";
    const writeId = nextId + 1;
    const value = encodeValue(counter, `${o.worker}:${writeId}`);
    begin("write", { key, fence, token: tokenToEvent(token), fenced: writeFenced, value });
    try {
      await store.write(key, fence, writeFenced ? token : undefined, value);
      end(writeId, "ok");
    } catch (err) {
      end(writeId, store.outcomeOf(err), { error: codeOf(err) });
    }
  }
}
