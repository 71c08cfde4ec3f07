/**
 * The throwaway store of `--memory`: the same rule as the SQLite store, on maps and an array, gone when
 * the process ends. A transaction keeps an undo log, so one that throws leaves nothing behind.
 */
import {
  AUDIT_VALUE_BYTES,
  type AuditRow,
  applyRule,
  type Decision,
  type Outcome,
  type RuleTarget,
  reasonOf,
  type Store,
  type Verdict,
} from "./store.js";

const VERDICTS: readonly Verdict[] = ["first", "equal", "newer", "stale", "unfenced", "token-required"];
const VERDICT_CODE = new Map(VERDICTS.map((v, i) => [v, i]));
// Marks a missing token in the int64 columns; real tokens are never negative.
const NONE = -1n;

/**
 * The audit log in columns: numbers in typed arrays, strings by reference (keys and fences interned,
 * the value preview as latin1 text). About a third of the memory of one object per entry, which
 * matters because a busy `--memory` server keeps every decision.
 */
class AuditLog {
  length = 0;
  private time = new Float64Array(1024);
  private tokens = new BigInt64Array(1024);
  private previous = new BigInt64Array(1024);
  // Bit 0: a write; bits 1-3: the verdict.
  private flags = new Uint8Array(1024);
  private keys: string[] = [];
  private fences: string[] = [];
  private previews: (string | null)[] = [];
  private readonly names = new Map<string, string>();

  push(d: Decision, previous: bigint | null, verdict: Verdict): void {
    const i = this.length;
    if (i === this.time.length) this.grow();
    this.time[i] = Date.now();
    this.tokens[i] = d.token ?? NONE;
    this.previous[i] = previous ?? NONE;
    this.flags[i] = (d.op === "write" ? 1 : 0) | ((VERDICT_CODE.get(verdict) as number) << 1);
    this.keys[i] = this.intern(d.key);
    this.fences[i] = this.intern(d.fence);
    this.previews[i] = d.op === "write" ? d.value.toString("latin1", 0, AUDIT_VALUE_BYTES) : null;
    this.length = i + 1;
  }

  /** Forgets entries from `length` on (a rolled-back transaction). */
  truncate(length: number): void {
    this.length = length;
    this.keys.length = this.fences.length = this.previews.length = length;
  }

  /** Entry `i` (0-based) as an audit row. */
  row(i: number): AuditRow {
    const flags = this.flags[i] as number;
    const verdict = VERDICTS[flags >> 1] as Verdict;
    const token = this.tokens[i] === NONE ? null : (this.tokens[i] as bigint);
    const previous = this.previous[i] === NONE ? null : (this.previous[i] as bigint);
    const preview = this.previews[i] ?? null;
    return {
      seq: i + 1,
      timeMs: this.time[i] as number,
      op: flags & 1 ? "write" : "read",
      key: this.keys[i] as string,
      fence: this.fences[i] as string,
      token,
      previousMax: previous,
      accepted: verdict !== "stale" && verdict !== "token-required",
      reason: reasonOf(verdict, token, previous),
      value: preview === null ? null : Buffer.from(preview, "latin1"),
    };
  }

  private intern(name: string): string {
    const known = this.names.get(name);
    if (known !== undefined) return known;
    this.names.set(name, name);
    return name;
  }

  private grow(): void {
    const size = this.time.length * 2;
    const time = new Float64Array(size);
    time.set(this.time);
    this.time = time;
    const tokens = new BigInt64Array(size);
    tokens.set(this.tokens);
    this.tokens = tokens;
    const previous = new BigInt64Array(size);
    previous.set(this.previous);
    this.previous = previous;
    const flags = new Uint8Array(size);
    flags.set(this.flags);
    this.flags = flags;
  }
}

/** What a transaction changed, to restore if it throws: the map, the key, the value before. */
type Undo = [Map<string, unknown>, string, unknown];

/** The store in memory. */
export class MemoryStore implements Store, RuleTarget {
  readonly file = ":memory:";
  private readonly kv = new Map<string, Buffer>();
  private readonly fences = new Map<string, bigint>();
  private readonly log = new AuditLog();
  private undo: Undo[] | undefined;

  constructor(readonly allowUnfenced = false) {}

  transaction<T>(fn: () => T): T {
    if (this.undo) throw new Error("transactions do not nest");
    const undo: Undo[] = [];
    const logLength = this.log.length;
    this.undo = undo;
    try {
      return fn();
    } catch (err) {
      for (let i = undo.length - 1; i >= 0; i--) {
        const [map, key, before] = undo[i] as Undo;
        if (before === undefined) map.delete(key);
        else map.set(key, before);
      }
      this.log.truncate(logLength);
      throw err;
    } finally {
      this.undo = undefined;
    }
  }

  decide(d: Decision): Outcome {
    return applyRule(this, this.allowUnfenced, d);
  }

  read(key: string, fence: string): { value: Buffer | null; maxToken: bigint | null } {
    return { value: this.get(key), maxToken: this.fenceMax(fence) };
  }

  maxToken(fence: string): bigint | null {
    return this.fenceMax(fence);
  }

  auditAfter(after: number, limit: number): AuditRow[] {
    const rows: AuditRow[] = [];
    for (let i = after; i < Math.min(this.log.length, after + limit); i++) rows.push(this.log.row(i));
    return rows;
  }

  /** Nothing to close; the data is dropped with the process. */
  close(): void {}

  /** @internal */
  fenceMax(fence: string): bigint | null {
    return this.fences.get(fence) ?? null;
  }

  /** @internal */
  setFenceMax(fence: string, token: bigint): void {
    this.undo?.push([this.fences, fence, this.fences.get(fence)]);
    this.fences.set(fence, token);
  }

  /** @internal */
  put(key: string, value: Buffer): void {
    this.undo?.push([this.kv, key, this.kv.get(key)]);
    // A copy: the value may be a slice of a larger request buffer that should not stay alive.
    this.kv.set(key, Buffer.from(value));
  }

  /** @internal */
  get(key: string): Buffer | null {
    return this.kv.get(key) ?? null;
  }

  /** @internal */
  audit(d: Decision, previous: bigint | null, verdict: Verdict): number {
    this.log.push(d, previous, verdict);
    return this.log.length;
  }
}
