/**
 * The throwaway store of `--memory`: the same rule as the SQLite store, on maps and a columnar audit log,
 * gone when the process ends. A transaction keeps an undo log, so one that throws leaves nothing behind.
 */
import { AuditColumns } from "./audit-columns.js";
import {
  type AuditRow,
  type Decision,
  type FenceReset,
  RuleStore,
  type StoreOptions,
  type Verdict,
} from "./store.js";

/** What a transaction changed, to restore if it throws: the map, the key, the value before. */
type Undo = [Map<string, unknown>, string, unknown];

/** The store in memory. */
export class MemoryStore extends RuleStore {
  readonly file = ":memory:";
  private readonly kv = new Map<string, Buffer>();
  private readonly fences = new Map<string, bigint>();
  private readonly log = new AuditColumns();
  private undo: Undo[] | undefined;

  private readonly auditKeep: number | undefined;

  /** A store with `options.allowUnfenced` and `options.auditKeep`; the other options are SQLite's. */
  constructor(options: StoreOptions = {}) {
    super(options.allowUnfenced ?? false);
    this.auditKeep = options.auditKeep;
  }

  transaction<T>(fn: () => T): T {
    if (this.undo) throw new Error("transactions do not nest");
    const undo: Undo[] = [];
    const logLength = this.log.length;
    this.undo = undo;
    try {
      const result = fn();
      if (this.auditKeep !== undefined) this.log.dropBefore(this.log.length - this.auditKeep);
      return result;
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

  auditAfter(after: number, limit: number): AuditRow[] {
    const rows: AuditRow[] = [];
    const start = Math.max(after, this.log.first);
    for (let i = start; i < Math.min(this.log.length, start + limit); i++) rows.push(this.log.row(i));
    return rows;
  }

  /** Nothing to close; the data is dropped with the process. */
  close(): void {}

  protected fenceMax(fence: string): bigint | null {
    return this.fences.get(fence) ?? null;
  }

  protected setFenceMax(fence: string, token: bigint): void {
    this.undo?.push([this.fences, fence, this.fences.get(fence)]);
    this.fences.set(fence, token);
  }

  protected deleteFence(fence: string): void {
    this.undo?.push([this.fences, fence, this.fences.get(fence)]);
    this.fences.delete(fence);
  }

  protected put(key: string, value: Buffer): void {
    this.undo?.push([this.kv, key, this.kv.get(key)]);
    // A copy: the value may be a slice of a larger request buffer that should not stay alive.
    this.kv.set(key, Buffer.from(value));
  }

  protected get(key: string): Buffer | null {
    return this.kv.get(key) ?? null;
  }

  protected audit(d: Decision | FenceReset, previous: bigint | null, verdict: Verdict): number {
    this.log.push(d, previous, verdict);
    return this.log.length;
  }
}
