/**
 * Who holds a lock, and for how long: the oldest key under the lock's prefix, its lease and that lease's
 * remaining TTL. Read for `mutex.status()`, for a waiter that has waited long enough to want to say why,
 * and for the message of a `LockTimeoutError`.
 */
import { fromWire, toWire } from "../proto/int64.js";
import type { LeaseTimeToLiveResponse, RangeResponse } from "../proto/types.js";
import { type LockKeys, oldestRange } from "./kv.js";
import type { Transport } from "./transport.js";

/** The key that holds a lock now. */
export interface LockHolder {
  /** The holder's key, `<name>/<leaseId hex>`. */
  key: string;
  /** Its fencing token (the key's create revision). */
  token: bigint;
  /** The lease the key is attached to; `0n` when it has none (it then never expires by itself). */
  leaseId: bigint;
  /** Seconds of TTL the lease has left if nobody renews it; `null` when the key has no lease. */
  ttlSeconds: number | null;
  /** When the lease expires if nobody renews it; `null` when the key has no lease. */
  expiresAt: Date | null;
}

/** A lock's state as the lock service has it. */
export interface LockStatus {
  /** The lock name. */
  name: string;
  /** The holder, or `null` when nobody holds the lock. */
  holder: LockHolder | null;
  /** Keys waiting behind the holder. */
  waiters: number;
}

/** Reads a lock's status (three small reads), bounded by `deadline` and `signal`. */
export async function readLockStatus(
  transport: Transport,
  name: string,
  keys: LockKeys,
  signal?: AbortSignal,
  deadline?: number,
): Promise<LockStatus> {
  const options = { signal, deadline, idempotent: true };
  const [oldest, count] = await Promise.all([
    transport.unary<RangeResponse>("KV", "Range", oldestRange(keys), options),
    transport.unary<RangeResponse>(
      "KV",
      "Range",
      { key: keys.prefix, range_end: keys.rangeEnd, count_only: true },
      options,
    ),
  ]);
  const kv = oldest.kvs[0];
  const total = Number(fromWire(count.count));
  if (!kv) return { name, holder: null, waiters: 0 };
  const leaseId = fromWire(kv.lease);
  let ttlSeconds: number | null = null;
  if (leaseId !== 0n) {
    const ttl = await transport.unary<LeaseTimeToLiveResponse>(
      "Lease",
      "LeaseTimeToLive",
      { ID: toWire(leaseId) },
      options,
    );
    ttlSeconds = Math.max(0, Number(fromWire(ttl.TTL)));
  }
  return {
    name,
    holder: {
      key: kv.key.toString(),
      token: fromWire(kv.create_revision),
      leaseId,
      ttlSeconds,
      expiresAt: ttlSeconds === null ? null : new Date(Date.now() + ttlSeconds * 1000),
    },
    waiters: Math.max(0, total - 1),
  };
}

/** A holder in words, for messages: key, token, lease and what happens to it. */
export function describeHolder(holder: LockHolder): string {
  if (holder.leaseId === 0n) {
    return `key ${holder.key} (token ${holder.token}), which has no lease and never expires by itself: remove it with \`etcdctl del ${holder.key}\` if its owner is gone`;
  }
  return `key ${holder.key} (token ${holder.token}, lease ${holder.leaseId.toString(16)}, expires in ${holder.ttlSeconds} s if not renewed)`;
}
