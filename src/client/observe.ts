/**
 * Observing an election's leaders. Reads the oldest candidate at revision R, then watches the whole prefix
 * from R + 1 and follows the events in order: with no leader, the first key put leads; a put on the
 * leader's key is a proclaimed value; the deletion of the leader's key makes the oldest candidate at that
 * revision the leader (read at exactly that revision). The revision of every event handled is kept, so
 * after a broken stream or a failover the watch resumes right after it: no change is missed, and a change
 * is reported only when the leader's key or its mod revision differs from the last one reported, so none
 * is repeated.
 */
import { fromWire, toWire } from "../proto/int64.js";
import { EventType, type KeyValue, type RangeResponse } from "../proto/types.js";
import { AbortedError } from "./errors.js";
import { type LockKeys, oldestRange } from "./kv.js";
import { PrefixWatch, pause } from "./prefix-watch.js";
import type { Transport } from "./transport.js";

/** One leader as `leader()` and `observe()` report it. */
export interface LeaderInfo {
  /** The leader's key, `<prefix>/<leaseId hex>`. */
  key: string;
  /** Its value, as last proclaimed. */
  value: Buffer;
  /** Its token: the key's create revision. */
  token: bigint;
  /** The revision of the key's last put (the campaign, or the last proclaim). */
  modRevision: bigint;
  /** The lease the key is under. */
  leaseId: bigint;
}

/** @internal */
export function leaderOf(kv: KeyValue): LeaderInfo {
  return {
    key: kv.key.toString(),
    value: kv.value,
    token: fromWire(kv.create_revision),
    modRevision: fromWire(kv.mod_revision),
    leaseId: fromWire(kv.lease),
  };
}

/** @internal Use `election.observe()`. */
export async function* observeLeaders(
  transport: Transport,
  keys: LockKeys,
  signal: AbortSignal | undefined,
): AsyncGenerator<LeaderInfo> {
  const stop = signal ?? new AbortController().signal;
  const check = () => {
    if (stop.aborted) throw new AbortedError("observe", stop.reason);
  };
  let leader: LeaderInfo | undefined;
  let reported: LeaderInfo | undefined;
  const fresh = (l: LeaderInfo | undefined) =>
    l !== undefined && (reported?.key !== l.key || reported.modRevision !== l.modRevision);
  const oldestAt = async (revision: bigint | undefined) => {
    const range = { ...oldestRange(keys), revision: revision === undefined ? undefined : toWire(revision) };
    const res = await transport.unary<RangeResponse>("KV", "Range", range, {
      signal: stop,
      idempotent: true,
    });
    const kv = res.kvs[0];
    return { leader: kv ? leaderOf(kv) : undefined, revision: fromWire(res.header?.revision) };
  };

  check();
  let first = await oldestAt(undefined);
  leader = first.leader;
  let seen = first.revision;
  if (fresh(leader)) {
    reported = leader;
    yield leader as LeaderInfo;
  }
  for (;;) {
    check();
    const watch = new PrefixWatch(transport, keys, seen + 1n, stop);
    try {
      for (;;) {
        const res = await watch.next();
        if (res === "again") break;
        if (res === "compacted") {
          // The revisions after `seen` are gone: start over from the present (changes between are lost).
          first = await oldestAt(undefined);
          leader = first.leader;
          seen = first.revision;
          if (fresh(leader)) {
            reported = leader;
            yield leader as LeaderInfo;
          }
          break;
        }
        for (const event of res.events) {
          const kv = event.kv;
          if (!kv) continue;
          const revision = fromWire(kv.mod_revision);
          if (event.type === EventType.PUT) {
            const put = leaderOf(kv);
            if (leader === undefined || (put.key === leader.key && put.token === leader.token)) leader = put;
          } else if (leader !== undefined && kv.key.toString() === leader.key) {
            leader = (await oldestAt(revision)).leader;
          }
          seen = revision;
          if (fresh(leader)) {
            reported = leader;
            yield leader as LeaderInfo;
          }
        }
      }
    } finally {
      watch.close();
    }
    await pause(stop);
  }
}
