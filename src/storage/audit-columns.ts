/**
 * The audit log of the memory store, in columns: fixed-size chunks of typed arrays (so it grows
 * without copying and without slack beyond the last chunk), names interned to numbers, value previews
 * in a byte pool. About 45 bytes per entry plus the preview, against about 110 for an object per entry:
 * it matters, because a busy `--memory` server keeps every decision.
 */
import {
  AUDIT_VALUE_BYTES,
  type AuditRow,
  type Decision,
  type FenceReset,
  reasonOf,
  type Verdict,
} from "./store.js";

const VERDICTS: readonly Verdict[] = [
  "first",
  "equal",
  "newer",
  "stale",
  "unfenced",
  "token-required",
  "reset",
];
const VERDICT_CODE = new Map(VERDICTS.map((v, i) => [v, i]));
// Marks a missing token in the int64 columns; real tokens are never negative.
const NONE = -1n;
const CHUNK_BITS = 14;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;
const SLAB_BYTES = 1 << 20;
// Flag bits: a write, a kept preview (a write's value, or who made a reset), then the verdict.
const WRITE = 1;
const PREVIEW = 2;
const VERDICT_SHIFT = 2;

/** One chunk of `CHUNK` entries. */
interface Chunk {
  time: Float64Array;
  tokens: BigInt64Array;
  previous: BigInt64Array;
  flags: Uint8Array;
  keys: Uint32Array;
  fences: Uint32Array;
  /** Where each preview is: slab index and offset in it (slab * SLAB_BYTES + offset), and its length. */
  at: Float64Array;
  lengths: Uint16Array;
}

function chunk(): Chunk {
  return {
    time: new Float64Array(CHUNK),
    tokens: new BigInt64Array(CHUNK),
    previous: new BigInt64Array(CHUNK),
    flags: new Uint8Array(CHUNK),
    keys: new Uint32Array(CHUNK),
    fences: new Uint32Array(CHUNK),
    at: new Float64Array(CHUNK),
    lengths: new Uint16Array(CHUNK),
  };
}

/** An append-only audit log that can drop its newest entries (a rolled-back transaction). */
export class AuditColumns {
  /** How many entries it has taken; entry `i` has sequence number `i + 1`. */
  length = 0;
  /** The oldest entry still kept (`dropBefore` forgets whole chunks before it). */
  first = 0;
  private readonly chunks: (Chunk | undefined)[] = [];
  private readonly slabs: (Buffer | undefined)[] = [];
  private slabUsed = SLAB_BYTES;
  private readonly names: string[] = [];
  private readonly ids = new Map<string, number>();

  /** Appends the decision on `d`, or the reset. */
  push(d: Decision | FenceReset, previous: bigint | null, verdict: Verdict): void {
    const i = this.length;
    if (i >>> CHUNK_BITS === this.chunks.length) this.chunks.push(chunk());
    const c = this.chunks[i >>> CHUNK_BITS] as Chunk;
    const j = i & MASK;
    c.time[j] = Date.now();
    c.tokens[j] = d.token ?? NONE;
    c.previous[j] = previous ?? NONE;
    c.keys[j] = this.id(d.key);
    c.fences[j] = this.id(d.fence);
    let flags = (VERDICT_CODE.get(verdict) as number) << VERDICT_SHIFT;
    if (d.op !== "read") {
      flags |= d.op === "write" ? WRITE | PREVIEW : PREVIEW;
      const n = Math.min(d.value.length, AUDIT_VALUE_BYTES);
      c.lengths[j] = n;
      c.at[j] = 0;
      if (n > 0) {
        if (this.slabUsed + n > SLAB_BYTES) {
          this.slabs.push(Buffer.allocUnsafe(SLAB_BYTES));
          this.slabUsed = 0;
        }
        d.value.copy(this.slabs[this.slabs.length - 1] as Buffer, this.slabUsed, 0, n);
        c.at[j] = (this.slabs.length - 1) * SLAB_BYTES + this.slabUsed;
        this.slabUsed += n;
      }
    }
    c.flags[j] = flags;
    this.length = i + 1;
  }

  /**
   * Forgets the whole chunks of entries before `index`, and the preview slabs only they used; `first`
   * moves to the start of the oldest chunk kept.
   */
  dropBefore(index: number): void {
    const keepChunk = Math.min(index, this.length) >>> CHUNK_BITS;
    if (keepChunk << CHUNK_BITS <= this.first) return;
    for (let k = this.first >>> CHUNK_BITS; k < keepChunk; k++) this.chunks[k] = undefined;
    this.first = keepChunk << CHUNK_BITS;
    // The oldest preview still needed is that of the first kept write; older slabs can go.
    for (let i = this.first; i < this.length; i++) {
      const c = this.chunks[i >>> CHUNK_BITS] as Chunk;
      if ((c.flags[i & MASK] as number) & PREVIEW && c.lengths[i & MASK] !== 0) {
        const slab = Math.floor((c.at[i & MASK] as number) / SLAB_BYTES);
        for (let s = 0; s < slab; s++) this.slabs[s] = undefined;
        return;
      }
    }
  }

  /** Forgets the entries from `length` on. Their preview bytes stay in the pool, unused. */
  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }

  /** Entry `i` (0-based, from `first` to `length - 1`) as an audit row. */
  row(i: number): AuditRow {
    const c = this.chunks[i >>> CHUNK_BITS] as Chunk;
    const j = i & MASK;
    const flags = c.flags[j] as number;
    const verdict = VERDICTS[flags >>> VERDICT_SHIFT] as Verdict;
    const token = c.tokens[j] === NONE ? null : (c.tokens[j] as bigint);
    const previous = c.previous[j] === NONE ? null : (c.previous[j] as bigint);
    let value: Buffer | null = null;
    if (flags & PREVIEW && c.lengths[j] === 0) value = Buffer.alloc(0);
    else if (flags & PREVIEW) {
      const at = c.at[j] as number;
      const slab = this.slabs[Math.floor(at / SLAB_BYTES)] as Buffer;
      const start = at % SLAB_BYTES;
      value = Buffer.from(slab.subarray(start, start + (c.lengths[j] as number)));
    }
    return {
      seq: i + 1,
      timeMs: c.time[j] as number,
      op: verdict === "reset" ? "reset" : flags & WRITE ? "write" : "read",
      key: this.names[c.keys[j] as number] as string,
      fence: this.names[c.fences[j] as number] as string,
      token,
      previousMax: previous,
      accepted: verdict !== "stale" && verdict !== "token-required",
      reason: reasonOf(verdict, token, previous),
      value,
    };
  }

  private id(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.ids.set(name, id);
    }
    return id;
  }
}
