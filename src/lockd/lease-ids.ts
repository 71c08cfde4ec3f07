/**
 * Lease IDs as etcd grants them: a server prefix in the high bits and a counter below it that starts at
 * the time of day and grows by one per grant. So IDs grow, and a client that (like etcd's contrib/lock
 * example) sends its lease ID as a "version" sees later holders send larger numbers, on one server.
 *
 * Layout of an ID (a positive int64): bit 63 is 0; bits 48–62 are the low 15 bits of the member ID
 * (0x7fff taken as 0x7ffe, so that at least 2^48 IDs are left above any start); bits 0–47 start at (unix milliseconds << 8) cut to 48 bits and count up by one per grant (etcd keeps
 * 16 bits of the member ID and clears the sign bit afterwards; the 8 low bits leave room for 256 grants
 * a millisecond before the counter runs ahead of the clock).
 *
 * Where etcd can go back (its counter restarts from the clock, which may be behind an earlier start's
 * counter, or set back), this one cannot: every grant records its ID in the database, in the transaction
 * that records the lease and that the grant's reply waits for, and a restart counts on from above the
 * recorded ID when the clock is behind it. A counter that outgrows its 48 bits carries into the prefix:
 * IDs still grow.
 */
import type { LockdDb } from "./db.js";
import { errors } from "./errors.js";

/** The largest int64. */
const MAX_INT64 = 0x7fff_ffff_ffff_ffffn;
const COUNTER_BITS = 48n;
const COUNTER_MASK = (1n << COUNTER_BITS) - 1n;
const PREFIX_MASK = 0x7fffn;
const TOP_PREFIX = 0x7ffen;

/** Where the generator keeps the highest ID it granted: `meta` of lockd's database. */
export type LeaseIdRecord = Pick<LockdDb, "meta" | "setMeta">;

/** Grants increasing lease IDs for one server; create one per open database. */
export class LeaseIdGenerator {
  private last: bigint;

  /**
   * Starts above every ID recorded in `db` and at or above the time-based start for `memberId`.
   * `now` (epoch ms) is for tests of a clock that went back.
   */
  constructor(
    private readonly db: LeaseIdRecord,
    memberId: bigint,
    now: () => number = Date.now,
  ) {
    const low = memberId & PREFIX_MASK;
    const prefix = (low > TOP_PREFIX ? TOP_PREFIX : low) << COUNTER_BITS;
    const start = prefix | ((BigInt(Math.max(0, Math.trunc(now()))) << 8n) & COUNTER_MASK);
    const recorded = db.meta("lease_id") ?? 0n;
    this.last = start - 1n > recorded ? start - 1n : recorded;
  }

  /**
   * The next ID, larger than every ID this generator or an earlier one on the same database returned,
   * and recorded in `db` (in its open transaction, if any; the caller's commit makes it durable). Throws
   * an `EtcdError` (`LEASE_IDS_EXHAUSTED`) past the largest int64, which a server reaches only after
   * more than 2^48 grants.
   */
  next(): bigint {
    if (this.last >= MAX_INT64) throw errors.leaseIdsExhausted();
    this.last += 1n;
    this.db.setMeta("lease_id", this.last);
    return this.last;
  }
}
