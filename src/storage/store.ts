/**
 * The fenced store: the rule of docs/design.md §3 (accept iff token >= maxSeen[fence]) applied to the data, the
 * fences and the audit log, so a decision and its effects commit together or not at all. Two stores
 * implement it: SQLite (durable, `sqlite-store.ts`) and memory (`--memory`, `memory-store.ts`). Both
 * are synchronous; `Batcher` groups the decisions of one event-loop turn into one transaction.
 */

/**
 * One request that needs a fencing decision: a write (with or without a token) or a fenced read. A read
 * without a token needs no decision (`Store.read`).
 */
export type Decision =
  | { op: "write"; key: string; fence: string; token: bigint | null; value: Buffer }
  | { op: "read"; key: string; fence: string; token: bigint };

/**
 * An operator's reset of a fence, as the audit log records it: `key` and `fence` are the fence's name,
 * `value` says who reset it and how.
 */
export interface FenceReset {
  op: "reset";
  key: string;
  fence: string;
  token: null;
  value: Buffer;
}

/** What a decision came to. A rejection wrote nothing but its audit row. */
export type Outcome =
  | { kind: "written"; seq: number; maxToken: bigint | null }
  | { kind: "read"; seq: number; value: Buffer | null; maxToken: bigint | null }
  | { kind: "stale"; seq: number; token: bigint; maxToken: bigint; reason: string }
  | { kind: "token-required"; seq: number; reason: string };

/** One row of the audit log, as stored. */
export interface AuditRow {
  seq: number;
  timeMs: number;
  /** `reset`: an operator cleared the fence's max (`previousMax`). */
  op: "read" | "write" | "reset";
  key: string;
  fence: string;
  token: bigint | null;
  previousMax: bigint | null;
  accepted: boolean;
  reason: string;
  /** The first bytes of a written value, or who made a reset and how; `null` for reads. */
  value: Buffer | null;
}

/** How the store is opened. */
export interface StoreOptions {
  /** Directory of the database file `storage.sqlite`; created if missing. Ignored with `memory`. */
  dataDir?: string;
  /** A throwaway store in memory with the same rule. */
  memory?: boolean;
  /**
   * SQLite `synchronous` in WAL mode. `normal` (default): a commit is in the WAL file before the reply,
   * so it survives the death of the process (SIGKILL), not of the machine. `full`: fsync per commit, so
   * it also survives an OS crash or power loss, at a much lower write rate.
   */
  synchronous?: "normal" | "full";
  /** Accept writes without a token (they bypass the fence). */
  allowUnfenced?: boolean;
  /**
   * Keep at least the newest `auditKeep` audit entries and drop older ones, a step at a time (so the log
   * holds somewhat more). Sequence numbers go on from where they were. Default: keep every entry.
   */
  auditKeep?: number;
}

/** How many bytes of a written value the audit log keeps. */
export const AUDIT_VALUE_BYTES = 256;

/** The data, the fences and the audit log behind the rule. Every method is synchronous. */
export interface Store {
  /** The database file, or `":memory:"`. */
  readonly file: string;
  readonly allowUnfenced: boolean;
  /** Runs `fn` in one transaction: all its decisions commit together, or none does (it throws). */
  transaction<T>(fn: () => T): T;
  /**
   * Applies the rule to one request and records the decision in the audit log. Call inside
   * `transaction`. A rejection writes only its audit row.
   */
  decide(d: Decision): Outcome;
  /** A read without a token: no decision, no audit row. */
  read(key: string, fence: string): { value: Buffer | null; maxToken: bigint | null };
  /** The highest token `fence` has seen; `null` if it never saw one. */
  maxToken(fence: string): bigint | null;
  /**
   * An operator's recovery: forgets `fence`'s max, so the next token of any size is accepted, and records
   * the reset (the old max, and `by`: who and how) in the audit log. Call inside `transaction`.
   */
  resetFence(fence: string, by: string): { seq: number; previousMax: bigint | null };
  /** Audit rows with `seq > after`, oldest first, at most `limit`. */
  auditAfter(after: number, limit: number): AuditRow[];
  /** Closes the store. Safe to call twice. */
  close(): void;
}

/** What the rule concluded, before it is worded. */
export type Verdict = "first" | "equal" | "newer" | "stale" | "unfenced" | "token-required" | "reset";

/** The audit log's sentence for a verdict. */
export function reasonOf(verdict: Verdict, token: bigint | null, previous: bigint | null): string {
  switch (verdict) {
    case "first":
      return `accepted: first token ${token}`;
    case "equal":
      return `accepted: token ${token} = max`;
    case "newer":
      return `accepted: token ${token} > max ${previous}`;
    case "stale":
      return `rejected: stale token ${token} < max ${previous}`;
    case "unfenced":
      return "accepted: unfenced write (--allow-unfenced)";
    case "token-required":
      return "rejected: a write needs a fencing token";
    case "reset":
      return previous === null
        ? "reset by an operator: the fence had no max"
        : `reset by an operator: max ${previous} cleared`;
  }
}

/**
 * What both stores share: the rule of docs/design.md §3 and the plain reads, written once on five primitives
 * that each store implements (all called inside one open transaction).
 */
export abstract class RuleStore implements Store {
  abstract readonly file: string;

  constructor(readonly allowUnfenced: boolean) {}

  abstract transaction<T>(fn: () => T): T;
  abstract auditAfter(after: number, limit: number): AuditRow[];
  abstract close(): void;

  /** The highest token `fence` has seen; `null` if none. */
  protected abstract fenceMax(fence: string): bigint | null;
  protected abstract setFenceMax(fence: string, token: bigint): void;
  protected abstract deleteFence(fence: string): void;
  protected abstract put(key: string, value: Buffer): void;
  protected abstract get(key: string): Buffer | null;
  /** Appends the decision (or reset) to the audit log and returns its sequence number. */
  protected abstract audit(d: Decision | FenceReset, previous: bigint | null, verdict: Verdict): number;

  decide(d: Decision): Outcome {
    const previous = this.fenceMax(d.fence);
    if (d.token === null) {
      if (!this.allowUnfenced) {
        const seq = this.audit(d, previous, "token-required");
        return { kind: "token-required", seq, reason: reasonOf("token-required", null, previous) };
      }
      // An unfenced write bypasses the fence on purpose (the demo's unsafe case) and leaves it unchanged.
      this.put(d.key, (d as Extract<Decision, { op: "write" }>).value);
      return { kind: "written", seq: this.audit(d, previous, "unfenced"), maxToken: previous };
    }
    const token = d.token;
    if (previous !== null && token < previous) {
      const seq = this.audit(d, previous, "stale");
      return { kind: "stale", seq, token, maxToken: previous, reason: reasonOf("stale", token, previous) };
    }
    const verdict: Verdict = previous === null ? "first" : token === previous ? "equal" : "newer";
    if (verdict !== "equal") this.setFenceMax(d.fence, token);
    if (d.op === "write") {
      this.put(d.key, d.value);
      return { kind: "written", seq: this.audit(d, previous, verdict), maxToken: token };
    }
    const seq = this.audit(d, previous, verdict);
    return { kind: "read", seq, value: this.get(d.key), maxToken: token };
  }

  read(key: string, fence: string): { value: Buffer | null; maxToken: bigint | null } {
    return { value: this.get(key), maxToken: this.fenceMax(fence) };
  }

  maxToken(fence: string): bigint | null {
    return this.fenceMax(fence);
  }

  resetFence(fence: string, by: string): { seq: number; previousMax: bigint | null } {
    const previousMax = this.fenceMax(fence);
    this.deleteFence(fence);
    const reset: FenceReset = { op: "reset", key: fence, fence, token: null, value: Buffer.from(by, "utf8") };
    return { seq: this.audit(reset, previousMax, "reset"), previousMax };
  }
}
