/**
 * Test helpers that talk to the lock service directly over gRPC (not through the client under test):
 * read the keys of a lock, revoke a lease from outside. Also small bounded waits.
 */
import * as grpc from "@grpc/grpc-js";
import { fromWire, toWire } from "../../src/proto/int64.js";
import { etcdServices } from "../../src/proto/load.js";
import type { RangeResponse } from "../../src/proto/types.js";
import { SortOrder, SortTarget } from "../../src/proto/types.js";

type Unary = (
  req: object,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

/** A key of a lock as the server has it. */
export interface RawKey {
  key: string;
  createRevision: bigint;
  lease: bigint;
}

/** Direct access to an etcd-compatible server. */
export interface RawEtcd {
  /** Keys under `name/`, oldest first. */
  keys(name: string): Promise<RawKey[]>;
  /** Puts a key without a lease, as `etcdctl put` does. */
  put(key: string, value: string): Promise<void>;
  /** The value of one key, or undefined if it does not exist. */
  get(key: string): Promise<string | undefined>;
  /** Deletes one key, as an operator would with `etcdctl del`. */
  delete(key: string): Promise<void>;
  /** Revokes a lease, as an operator would with `etcdctl lease revoke`. */
  revoke(leaseId: bigint): Promise<void>;
  close(): void;
}

function call<T>(client: grpc.Client, method: string, req: object): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method] as Unary;
  return new Promise((resolve, reject) =>
    fn.call(client, req, { deadline: Date.now() + 5000 }, (err, res) =>
      err ? reject(err) : resolve(res as T),
    ),
  );
}

/** Opens a raw connection to the first endpoint that answers. */
export function rawEtcd(endpoints: string[]): RawEtcd {
  const services = etcdServices();
  const creds = grpc.credentials.createInsecure();
  const pairs = endpoints.map((e) => ({
    kv: new services.KV(e, creds),
    lease: new services.Lease(e, creds),
  }));
  const tryAll = async <T>(fn: (p: (typeof pairs)[number]) => Promise<T>): Promise<T> => {
    let last: unknown;
    for (const p of pairs) {
      try {
        return await fn(p);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };
  return {
    async keys(name) {
      const prefix = Buffer.from(`${name}/`);
      const end = Buffer.from(prefix);
      end[end.length - 1] = (end[end.length - 1] as number) + 1;
      const res = await tryAll((p) =>
        call<RangeResponse>(p.kv, "Range", {
          key: prefix,
          range_end: end,
          sort_order: SortOrder.ASCEND,
          sort_target: SortTarget.CREATE,
        }),
      );
      return res.kvs.map((kv) => ({
        key: kv.key.toString(),
        createRevision: fromWire(kv.create_revision),
        lease: fromWire(kv.lease),
      }));
    },
    async put(key, value) {
      await tryAll((p) => call(p.kv, "Put", { key: Buffer.from(key), value: Buffer.from(value) }));
    },
    async get(key) {
      const res = await tryAll((p) => call<RangeResponse>(p.kv, "Range", { key: Buffer.from(key) }));
      return res.kvs[0]?.value.toString();
    },
    async delete(key) {
      await tryAll((p) => call(p.kv, "DeleteRange", { key: Buffer.from(key) }));
    },
    async revoke(leaseId) {
      await tryAll((p) => call(p.lease, "LeaseRevoke", { ID: toWire(leaseId) }));
    },
    close() {
      for (const p of pairs) {
        p.kv.close();
        p.lease.close();
      }
    },
  };
}

/** Polls `check` every 25 ms until it returns true; throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Resolves with `promise`, or rejects if it takes longer than `timeoutMs`. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the signal's reason once it aborts; rejects after `timeoutMs`. */
export function aborted(signal: AbortSignal, timeoutMs = 10_000): Promise<unknown> {
  return within(
    "the signal to abort",
    new Promise((resolve) => {
      if (signal.aborted) resolve(signal.reason);
      else signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
    }),
    timeoutMs,
  );
}
