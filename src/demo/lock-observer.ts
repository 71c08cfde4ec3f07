/**
 * Watches a lock's keys on the lock service (etcd or lockd, over the etcd v3 API) and reports what the
 * lock service itself shows: which key holds the lock (the oldest), which keys queue behind it, and
 * when a key disappears. This is the lock service's lane of the timeline, taken from the service,
 * not from what the clients believe.
 */
import * as grpc from "@grpc/grpc-js";
import { fromWire, toWire } from "../proto/int64.js";
import { etcdServices } from "../proto/load.js";
import { EventType, type KeyValue, type RangeResponse, type WatchResponse } from "../proto/types.js";
import { ScenarioError } from "./errors.js";
import type { DemoEvent } from "./events.js";

/** A running observer. */
export interface LockObserver {
  /** Stops watching and closes the connection. Safe to call more than once. */
  stop(): void;
}

/** Options of `observeLock`. */
export interface ObserveOptions {
  endpoints: readonly string[];
  /** The lock's name, e.g. `/lock`; its keys are `<name>/<leaseId hex>`. */
  lockName: string;
  onEvent: (event: DemoEvent) => void;
  /** How long to wait for a member to answer and the watch to start, default 5 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] as number;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

interface Held {
  createRevision: bigint;
  lease: bigint;
}

type RangeMethod = (
  req: object,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: RangeResponse) => void,
) => void;

/** Asks one member for the lock's keys, with a deadline. */
function rangeOnce(endpoint: string, prefix: Buffer, timeoutMs: number): Promise<RangeResponse> {
  const kv = new (etcdServices().KV)(endpoint, grpc.credentials.createInsecure());
  const range = (kv as unknown as { Range: RangeMethod }).Range.bind(kv);
  return new Promise<RangeResponse>((resolve, reject) => {
    range({ key: prefix, range_end: prefixEnd(prefix) }, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  }).finally(() => kv.close());
}

/**
 * Starts watching `<lockName>/` and resolves once the watch is in place (events from then on are
 * reported through `onEvent`, with this process's clock). Tries the endpoints in order. Rejects with
 * `ScenarioError` if no member answers within `timeoutMs`, or with the signal's reason on abort.
 */
export async function observeLock(options: ObserveOptions): Promise<LockObserver> {
  const { onEvent, signal } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  signal?.throwIfAborted();
  const prefix = Buffer.from(`${options.lockName}/`);
  let endpoint: string | undefined;
  let initial: RangeResponse | undefined;
  const failures: string[] = [];
  for (const candidate of options.endpoints) {
    try {
      initial = await rangeOnce(candidate, prefix, Math.min(timeoutMs, 2000));
      endpoint = candidate;
      break;
    } catch (err) {
      failures.push(`${candidate}: ${(err as Error).message}`);
    }
  }
  if (!endpoint || !initial) {
    throw new ScenarioError(`no lock service member answered: ${failures.join("; ")}`);
  }

  const held = new Map<string, Held>();
  for (const kv of initial.kvs) {
    held.set(kv.key.toString(), { createRevision: fromWire(kv.create_revision), lease: fromWire(kv.lease) });
  }
  const oldest = (): [string, Held] | undefined => {
    let best: [string, Held] | undefined;
    for (const entry of held) if (!best || entry[1].createRevision < best[1].createRevision) best = entry;
    return best;
  };
  const report = (kind: "granted" | "queued" | "deleted", key: string, h: Held) =>
    onEvent({
      timeMs: Date.now(),
      actor: "lock service",
      kind,
      what: `${kind} ${key}`,
      token: h.createRevision,
      leaseId: h.lease.toString(16),
      key,
    });

  const onKv = (type: number, kv: KeyValue) => {
    const key = kv.key.toString();
    const before = oldest()?.[0];
    if (type === EventType.PUT) {
      if (held.has(key)) return;
      const h = { createRevision: fromWire(kv.create_revision), lease: fromWire(kv.lease) };
      held.set(key, h);
      report(oldest()?.[0] === key ? "granted" : "queued", key, h);
      return;
    }
    const h = held.get(key);
    if (!h) return;
    held.delete(key);
    report("deleted", key, h);
    const next = oldest();
    if (next && next[0] !== before) report("granted", next[0], next[1]);
  };

  const watchClient = new (etcdServices().Watch)(endpoint, grpc.credentials.createInsecure());
  const call = (
    watchClient as unknown as { Watch: () => grpc.ClientDuplexStream<object, WatchResponse> }
  ).Watch();
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    call.cancel();
    watchClient.close();
  };
  // After stop() the stream ends with CANCELLED; before, an error means the lock service went away,
  // which the scenario notices through its clients.
  call.on("error", () => {});
  call.on("data", (res: WatchResponse) => {
    for (const e of res.events) if (e.kv) onKv(e.type, e.kv);
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new ScenarioError(`watch on ${endpoint} not started in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onAbort = () => finish(signal?.reason);
    const finish = (err?: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      call.off("data", onFirst);
      if (err === undefined) resolve();
      else {
        stop();
        reject(err);
      }
    };
    const onFirst = (res: WatchResponse) => {
      if (res.created) finish();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    call.on("data", onFirst);
    call.write({
      create_request: {
        key: prefix,
        range_end: prefixEnd(prefix),
        start_revision: toWire(fromWire(initial.header?.revision) + 1n),
      },
    });
  });
  return { stop };
}
