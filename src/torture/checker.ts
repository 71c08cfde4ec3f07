/**
 * The checker: a pure function from a run's record (the workers' operations, the storage's audit log, the
 * values read at the end and after each storage restart) to the violations it proves. Each violation names
 * the operations and audit entries that show it and the smallest window of time holding them.
 *
 * What it checks:
 * - mutual exclusion of effects: per fence, the tokens of accepted writes never go back (for unfenced
 *   writes, the writer's own lock token stands in), and every token the storage accepted was granted to
 *   the worker that used it; the lock service never grants one token twice;
 * - lost updates: replaying the storage's accepted writes, every write must add one to what is stored; a
 *   write built on a stale read names the two writers that collided and the increments it erased, and the
 *   final counter must equal the number of accepted increments;
 * - durability: every write a worker saw acknowledged is in the audit, each storage restart kept the last
 *   acknowledged write, and the final value is the last accepted write;
 * - stale reads (fenced mode): no read is accepted with a token below the fence's maximum, and each fenced
 *   read returned the last write accepted before it.
 */
import type { AuditEntry } from "../storage/index.js";
import { decodeValue, type Op } from "./history.js";

/** How workers use tokens. */
export type Mode = "unfenced" | "write-fenced" | "fenced";

/** One decision of the storage, as its audit log reports it. */
export type AuditRecord = AuditEntry;

/** The values read right after one storage restart. */
export interface RestartRecord {
  /** When the storage was killed, epoch ms. */
  killMs: number;
  /** When it answered again, epoch ms. */
  upMs: number;
  /** Key → value read after the restart (`null` = missing). */
  values: Record<string, string | null>;
}

/** Everything the checker reads. */
export interface CheckInput {
  mode: Mode;
  keys: readonly string[];
  ops: readonly Op[];
  audit: readonly AuditRecord[];
  /** Key → value read after every worker stopped. */
  finals: Record<string, string | null>;
  restarts: readonly RestartRecord[];
}

/** The kinds of violation. */
export type ViolationKind =
  | "token-regression"
  | "foreign-token"
  | "duplicate-grant"
  | "lost-update"
  | "unexplained-value"
  | "durability"
  | "stale-read";

/** The part of the history that shows a violation. */
export interface ViolationWindow {
  fromMs: number;
  toMs: number;
  /** Refs of the operations that show it. */
  ops: string[];
  /** Audit sequence numbers that show it. */
  audit: number[];
}

/** One proven violation. */
export interface Violation {
  kind: ViolationKind;
  message: string;
  key?: string;
  fence?: string;
  /** For lost updates: the two writers that collided, the earlier first. */
  writers?: [string, string];
  /** For lost updates: how many acknowledged increments the overwrite erased, and which. */
  lost?: number;
  overwritten?: string[];
  window: ViolationWindow;
}

/** Per key: what the storage acknowledged, what is left, what was lost. */
export interface KeySummary {
  key: string;
  /** Writes the storage accepted (its audit). */
  accepted: number;
  /** Writes a worker saw acknowledged. */
  acknowledged: number;
  /** The final counter (`null` if the key is missing). */
  final: number | null;
  /** Accepted increments missing from the final counter (accepted − final). */
  lost: number;
}

/** The checker's answer. */
export interface CheckResult {
  ok: boolean;
  violations: Violation[];
  counts: Record<ViolationKind, number>;
  keys: KeySummary[];
}

const KINDS: ViolationKind[] = [
  "token-regression",
  "foreign-token",
  "duplicate-grant",
  "lost-update",
  "unexplained-value",
  "durability",
  "stale-read",
];

interface Point {
  ms: number;
  op?: string;
  audit?: number;
}

function windowOf(points: Point[]): ViolationWindow {
  const ms = points.map((p) => p.ms).filter((m) => Number.isFinite(m));
  return {
    fromMs: ms.length ? Math.min(...ms) : 0,
    toMs: ms.length ? Math.max(...ms) : 0,
    ops: [...new Set(points.flatMap((p) => (p.op ? [p.op] : [])))],
    audit: [...new Set(points.flatMap((p) => (p.audit !== undefined ? [p.audit] : [])))].sort(
      (a, b) => a - b,
    ),
  };
}

function opPoints(op: Op | undefined): Point[] {
  if (!op) return [];
  const points: Point[] = [{ ms: op.invokeMs, op: op.ref }];
  if (op.completeMs !== null) points.push({ ms: op.completeMs, op: op.ref });
  return points;
}

function auditPoint(a: AuditRecord): Point {
  return { ms: a.timeMs, audit: a.seq };
}

/** Checks a run's record. Pure and deterministic; never throws on odd input, it reports it. */
export function check(input: CheckInput): CheckResult {
  const violations: Violation[] = [];
  const opsByRef = new Map(input.ops.map((op) => [op.ref, op]));
  const audit = [...input.audit].sort((a, b) => a.seq - b.seq);
  const writes = audit.filter((a) => a.op === "write" && a.accepted);
  const writerOf = (a: AuditRecord): Op | undefined => {
    const decoded = decodeValue(a.value);
    return decoded ? opsByRef.get(decoded.ref) : undefined;
  };

  // The lock service: one token, one grant.
  const grants = new Map<bigint, Op>();
  for (const op of input.ops) {
    if (op.kind !== "lock" || op.outcome !== "ok" || op.token === null) continue;
    const earlier = grants.get(op.token);
    if (earlier && earlier.ref !== op.ref) {
      violations.push({
        kind: "duplicate-grant",
        message: `token ${op.token} was granted twice: to ${earlier.ref} and to ${op.ref}`,
        window: windowOf([...opPoints(earlier), ...opPoints(op)]),
      });
      continue;
    }
    grants.set(op.token, op);
  }

  // Mutual exclusion of effects.
  const maxWrite = new Map<string, { token: bigint; entry: AuditRecord }>();
  for (const a of writes) {
    const writer = writerOf(a);
    const token = a.token ?? writer?.token ?? null;
    if (a.token !== null) {
      const grant = grants.get(a.token);
      if (!grant || !writer || grant.worker !== writer.worker) {
        violations.push({
          kind: "foreign-token",
          fence: a.fence,
          key: a.key,
          message: `write #${a.seq} by ${writer?.ref ?? "an unknown writer"} was accepted with token ${a.token}, ${
            grant ? `granted to ${grant.worker}` : "which no worker was granted"
          }`,
          window: windowOf([auditPoint(a), ...opPoints(writer), ...opPoints(grant)]),
        });
      }
    }
    if (token === null) continue;
    const prev = maxWrite.get(a.fence);
    if (prev && token < prev.token) {
      const before = writerOf(prev.entry);
      violations.push({
        kind: "token-regression",
        fence: a.fence,
        key: a.key,
        message: `on fence ${a.fence}, write #${a.seq} by ${writer?.ref ?? "?"} (token ${token}) was accepted after write #${prev.entry.seq} by ${before?.ref ?? "?"} (token ${prev.token})`,
        window: windowOf([auditPoint(prev.entry), auditPoint(a), ...opPoints(writer)]),
      });
      continue;
    }
    maxWrite.set(a.fence, { token, entry: a });
  }

  // Lost updates: replay the accepted writes per key.
  const summaries: KeySummary[] = [];
  const keys = [...new Set([...input.keys, ...writes.map((w) => w.key)])];
  for (const key of keys) {
    let state = 0;
    const stored = new Set<number>([0]);
    let previous: AuditRecord | undefined;
    const lastWriterOf = new Map<number, AuditRecord>();
    const keyWrites = writes.filter((w) => w.key === key);
    for (const a of keyWrites) {
      const decoded = decodeValue(a.value);
      if (!decoded) {
        violations.push({
          kind: "unexplained-value",
          key,
          message: `write #${a.seq} on ${key} stored a value no worker writes: ${JSON.stringify(a.value)}`,
          window: windowOf([auditPoint(a)]),
        });
        continue;
      }
      const v = decoded.counter;
      if (!stored.has(v - 1)) {
        violations.push({
          kind: "unexplained-value",
          key,
          message: `write #${a.seq} by ${decoded.ref} stored ${v} on ${key}, but ${v - 1} was never stored there: it read a value the storage never accepted`,
          window: windowOf([auditPoint(a), ...opPoints(opsByRef.get(decoded.ref))]),
        });
      } else if (v !== state + 1) {
        // The writer read v-1, which was no longer the stored value: its write replaces what is there.
        const erased = Math.max(0, state + 1 - v);
        const overwritten: string[] = [];
        for (let n = v; n <= state; n++) {
          const ref = decodeValue(lastWriterOf.get(n)?.value)?.ref;
          if (ref) overwritten.push(ref);
        }
        // Below: the first write that consumed the same read. Above: the write whose value it replaced.
        const collided = erased > 0 ? lastWriterOf.get(v) : previous;
        const other = decodeValue(collided?.value)?.ref ?? "?";
        const writeOp = opsByRef.get(decoded.ref);
        const readOp = writeOp ? readBefore(input.ops, writeOp) : undefined;
        const what =
          erased > 0
            ? `${decoded.ref} and ${other} both read ${v - 1} and wrote ${v}; write #${a.seq} erased ${erased} acknowledged increment(s) (${overwritten.join(", ")})`
            : `${decoded.ref} read ${v - 1} and wrote ${v} after ${other} had stored ${state}; write #${a.seq} replaced it with a counter built on a stale read`;
        violations.push({
          kind: "lost-update",
          key,
          writers: [other, decoded.ref],
          lost: erased,
          overwritten,
          message: `lost update on ${key}: ${what}`,
          window: windowOf([
            ...(readOp ? [{ ms: readOp.invokeMs, op: readOp.ref }] : []),
            ...(collided ? [auditPoint(collided), { ms: collided.timeMs, op: other }] : []),
            auditPoint(a),
            { ms: writeOp?.completeMs ?? a.timeMs, op: decoded.ref },
          ]),
        });
      }
      state = v;
      previous = a;
      stored.add(v);
      lastWriterOf.set(v, a);
    }
    const acknowledged = input.ops.filter((o) => o.kind === "write" && o.key === key && o.outcome === "ok");
    const finalValue = decodeValue(input.finals[key]);
    const final = finalValue ? finalValue.counter : null;
    const lost = keyWrites.length - (final ?? state);
    if (lost !== 0 && !violations.some((v) => v.key === key && v.kind === "lost-update")) {
      const last = keyWrites.at(-1);
      violations.push({
        kind: "lost-update",
        key,
        lost,
        message: `the final counter of ${key} is ${final ?? "missing"}, but the storage accepted ${keyWrites.length} increments`,
        window: windowOf(last ? [auditPoint(last)] : []),
      });
    }
    summaries.push({ key, accepted: keyWrites.length, acknowledged: acknowledged.length, final, lost });
  }

  // Durability.
  const acceptedRefs = new Map<string, AuditRecord>();
  for (const a of writes) {
    const ref = decodeValue(a.value)?.ref;
    if (ref) acceptedRefs.set(ref, a);
  }
  for (const op of input.ops) {
    if (op.kind === "write" && op.outcome === "ok" && !acceptedRefs.has(op.ref)) {
      violations.push({
        kind: "durability",
        key: op.key,
        message: `write ${op.ref} on ${op.key} was acknowledged to the worker but the storage has no record of accepting it`,
        window: windowOf(opPoints(op)),
      });
    }
  }
  for (const restart of input.restarts) {
    for (const key of Object.keys(restart.values)) {
      const acked = input.ops.filter(
        (o) =>
          o.kind === "write" &&
          o.key === key &&
          o.outcome === "ok" &&
          o.completeMs !== null &&
          o.completeMs < restart.killMs,
      );
      const seqs = acked.flatMap((o) => {
        const a = acceptedRefs.get(o.ref);
        return a ? [{ op: o, a }] : [];
      });
      const last = seqs.sort((x, y) => x.a.seq - y.a.seq).at(-1);
      if (!last) continue;
      const seen = decodeValue(restart.values[key]);
      const seenEntry = seen ? acceptedRefs.get(seen.ref) : undefined;
      if (!seenEntry || seenEntry.seq < last.a.seq) {
        violations.push({
          kind: "durability",
          key,
          message: `after the storage restart at ${new Date(restart.upMs).toISOString()}, ${key} held ${JSON.stringify(
            restart.values[key],
          )}, older than the acknowledged write ${last.op.ref} (audit #${last.a.seq})`,
          window: windowOf([...opPoints(last.op), { ms: restart.upMs }]),
        });
      }
    }
  }
  for (const key of keys) {
    const last = writes.filter((w) => w.key === key).at(-1);
    const final = input.finals[key] ?? null;
    if (!last) continue;
    if (final !== last.value) {
      violations.push({
        kind: "durability",
        key,
        message: `the final value of ${key} is ${JSON.stringify(final)}, not the last accepted write #${last.seq} (${JSON.stringify(last.value)})`,
        window: windowOf([auditPoint(last)]),
      });
    }
  }

  if (input.mode === "fenced") violations.push(...staleReads(input, audit, writes));

  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>;
  for (const v of violations) counts[v.kind]++;
  return { ok: violations.length === 0, violations, counts, keys: summaries };
}

/** The worker's last read on the same key before `write`, in the same hold. */
function readBefore(ops: readonly Op[], write: Op): Op | undefined {
  let found: Op | undefined;
  for (const op of ops) {
    if (op.worker !== write.worker || op.id >= write.id) continue;
    if (op.kind === "read" && op.key === write.key && op.token === write.token) found = op;
  }
  return found;
}

function staleReads(input: CheckInput, audit: AuditRecord[], writes: AuditRecord[]): Violation[] {
  const out: Violation[] = [];
  const max = new Map<string, AuditRecord>();
  for (const a of audit) {
    if (!a.accepted || a.token === null) continue;
    const prev = max.get(a.fence);
    if (prev?.token != null && a.token < prev.token) {
      if (a.op === "read") {
        out.push({
          kind: "stale-read",
          key: a.key,
          fence: a.fence,
          message: `read #${a.seq} of ${a.key} was accepted with token ${a.token} after #${prev.seq} had raised fence ${a.fence} to ${prev.token}`,
          window: windowOf([auditPoint(prev), auditPoint(a)]),
        });
      } else if (!writes.some((w) => w.seq === prev.seq)) {
        out.push({
          kind: "token-regression",
          key: a.key,
          fence: a.fence,
          message: `write #${a.seq} on ${a.key} was accepted with token ${a.token} after the fenced read #${prev.seq} had raised fence ${a.fence} to ${prev.token}`,
          window: windowOf([auditPoint(prev), auditPoint(a)]),
        });
      }
      continue;
    }
    max.set(a.fence, a);
  }
  // Index once, so that long runs stay linear-ish: fenced reads by key and token, writes by key.
  const readsByKeyToken = new Map<string, AuditRecord[]>();
  for (const a of audit) {
    if (a.op !== "read" || !a.accepted || a.token === null) continue;
    const id = `${a.key}\u0000${a.token}`;
    const list = readsByKeyToken.get(id);
    if (list) list.push(a);
    else readsByKeyToken.set(id, [a]);
  }
  const writesByKey = new Map<string, AuditRecord[]>();
  for (const w of writes) {
    const list = writesByKey.get(w.key);
    if (list) list.push(w);
    else writesByKey.set(w.key, [w]);
  }
  for (const op of input.ops) {
    if (op.kind !== "read" || op.outcome !== "ok" || !op.fenced || op.token === null) continue;
    const entry = readsByKeyToken.get(`${op.key}\u0000${op.token}`)?.shift();
    if (!entry) continue;
    const before = lastBefore(writesByKey.get(op.key ?? "") ?? [], entry.seq);
    const expected = before?.value ?? null;
    if ((op.read ?? null) !== expected) {
      out.push({
        kind: "stale-read",
        key: op.key,
        message: `fenced read ${op.ref} of ${op.key} returned ${JSON.stringify(op.read)}, but the last write accepted before it (#${before?.seq ?? "none"}) was ${JSON.stringify(expected)}`,
        window: windowOf([...opPoints(op), ...(before ? [auditPoint(before)] : []), auditPoint(entry)]),
      });
    }
  }
  return out;
}

/** The last entry of `sorted` (ascending by seq) with a seq below `seq`, by binary search. */
function lastBefore(sorted: readonly AuditRecord[], seq: number): AuditRecord | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as AuditRecord).seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? sorted[lo - 1] : undefined;
}
