/**
 * A builder of hand-made histories for the checker's unit tests: workers' operations and the storage's
 * audit entries, with times that advance by 1 ms per step (invoke, the storage's decision, completion).
 */
import type { AuditRecord, CheckInput, Mode } from "../../src/torture/checker.js";
import { encodeValue, type Op } from "../../src/torture/history.js";

export class HistoryBuilder {
  readonly ops: Op[] = [];
  readonly audit: AuditRecord[] = [];
  private now = 1_000_000;
  private readonly ids = new Map<string, number>();
  private readonly maxSeen = new Map<string, bigint>();

  constructor(readonly mode: Mode) {}

  private tick(): number {
    this.now += 1;
    return this.now;
  }

  private op(worker: string, fields: Partial<Op> & Pick<Op, "kind">): Op {
    const id = (this.ids.get(worker) ?? 0) + 1;
    this.ids.set(worker, id);
    const invokeMs = this.tick();
    const op: Op = {
      ref: `${worker}:${id}`,
      worker,
      slot: Number(/^w(\d+)/.exec(worker)?.[1] ?? -1),
      id,
      token: null,
      fenced: false,
      outcome: "ok",
      invokeMs,
      completeMs: invokeMs,
      ...fields,
    };
    this.ops.push(op);
    return op;
  }

  private record(entry: Omit<AuditRecord, "seq" | "timeMs" | "previousMax" | "reason">): AuditRecord {
    const previousMax = this.maxSeen.get(entry.fence) ?? null;
    if (entry.accepted && entry.token !== null && (previousMax === null || entry.token > previousMax)) {
      this.maxSeen.set(entry.fence, entry.token);
    }
    const a: AuditRecord = {
      ...entry,
      seq: this.audit.length + 1,
      timeMs: this.tick(),
      previousMax,
      reason: entry.accepted ? "ok" : "stale",
    };
    this.audit.push(a);
    return a;
  }

  /** `worker` is granted `token` on `lock`. */
  lock(worker: string, token: bigint, lock = "/l"): Op {
    return this.op(worker, { kind: "lock", lock, token });
  }

  /** `worker` reads `value` of `key` (holding `token`); fenced reads are audited. */
  read(worker: string, key: string, token: bigint, value: string | null): Op {
    const fenced = this.mode === "fenced";
    const op = this.op(worker, { kind: "read", key, fence: key, token, fenced, read: value });
    this.record({ op: "read", key, fence: key, token: fenced ? token : null, accepted: true, value: null });
    op.completeMs = this.tick();
    return op;
  }

  /** `worker` writes counter `n` to `key` holding `token`; the storage accepts or refuses it. */
  write(
    worker: string,
    key: string,
    token: bigint,
    n: number,
    opts: { accepted?: boolean; acked?: boolean; audited?: boolean } = {},
  ): Op {
    const fenced = this.mode !== "unfenced";
    const accepted = opts.accepted ?? true;
    const op = this.op(worker, {
      kind: "write",
      key,
      fence: key,
      token,
      fenced,
      outcome: opts.acked === false ? "unknown" : accepted ? "ok" : "fail",
    });
    op.written = encodeValue(n, op.ref);
    if (opts.audited !== false) {
      this.record({
        op: "write",
        key,
        fence: key,
        token: fenced ? token : null,
        accepted,
        value: op.written,
      });
    }
    op.completeMs = this.tick();
    return op;
  }

  /** A raw audit entry, for histories a correct storage would never produce. */
  rawAudit(entry: Omit<AuditRecord, "seq" | "timeMs" | "previousMax" | "reason">): AuditRecord {
    return this.record(entry);
  }

  unlock(worker: string, token: bigint, lock = "/l"): Op {
    return this.op(worker, { kind: "unlock", lock, token });
  }

  /** The checker's input, with the final values given (default: the last accepted write per key). */
  input(finals?: Record<string, string | null>, restarts: CheckInput["restarts"] = []): CheckInput {
    const keys = [...new Set(this.ops.flatMap((o) => (o.key ? [o.key] : [])))];
    const last: Record<string, string | null> = {};
    for (const k of keys) {
      last[k] = this.audit.filter((a) => a.key === k && a.op === "write" && a.accepted).at(-1)?.value ?? null;
    }
    return { mode: this.mode, keys, ops: this.ops, audit: this.audit, finals: finals ?? last, restarts };
  }

  /** The current fake time. */
  get time(): number {
    return this.now;
  }
}
