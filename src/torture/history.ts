/**
 * The history format. A worker prints one JSON event per line on its standard output: an `invoke` before
 * each operation and an `ok`, `fail` or `info` (outcome unknown) after it. Int64 tokens travel as decimal
 * strings. `foldHistory` pairs the events into operations; an operation whose worker died before it
 * completed is kept with the outcome `unknown`, because its effect may or may not have happened.
 */
import { fromWire, toWire } from "../proto/int64.js";

/** The operations a worker performs. */
export type OpKind = "lock" | "read" | "write" | "unlock";

/** How an operation ended: done, certainly not done, or not known. */
export type Outcome = "ok" | "fail" | "unknown";

/** One line of a worker's history, as printed. */
export interface HistoryEvent {
  /** The worker incarnation, `w<slot>.<incarnation>`, e.g. `w2.1`. */
  w: string;
  /** The operation's number within that worker, from 1. */
  id: number;
  t: "invoke" | "ok" | "fail" | "info";
  /** Epoch milliseconds (fractional), taken on the worker. */
  at: number;
  op?: OpKind;
  lock?: string;
  key?: string;
  fence?: string;
  /** The token of the lock the worker holds (or got, on `lock` ok), decimal. */
  token?: string | null;
  /** Whether the token was sent to the storage with this read or write. */
  fenced?: boolean;
  /** The value written (`invoke` of a write) or read (`ok` of a read). */
  value?: string | null;
  /** The error's code on `fail`/`info`. */
  error?: string;
}

/** One operation, its invoke and completion joined. */
export interface Op {
  /** `<worker>:<id>`, unique in a run; a written value carries it. */
  ref: string;
  worker: string;
  slot: number;
  id: number;
  kind: OpKind;
  lock?: string;
  key?: string;
  fence?: string;
  /** The holder's token: the lock's token for read/write/unlock, the granted token for a `lock` ok. */
  token: bigint | null;
  /** True when the token went to the storage with the read or write. */
  fenced: boolean;
  /** What a write wrote. */
  written?: string;
  /** What a read returned (`null` = no such key). */
  read?: string | null;
  outcome: Outcome;
  invokeMs: number;
  /** `null` when the worker never reported an outcome. */
  completeMs: number | null;
  error?: string;
}

/** The value a worker writes: the counter, then the writing operation's ref, e.g. `7 w2.1:31`. */
export function encodeValue(counter: number, ref: string): string {
  return `${counter} ${ref}`;
}

/** Splits a stored value into its counter and writer ref; `null` for a missing or foreign value. */
export function decodeValue(value: string | null | undefined): { counter: number; ref: string } | null {
  if (value === null || value === undefined) return null;
  const m = /^(\d+) (w\d+\.\d+:\d+)$/.exec(value);
  if (!m) return null;
  return { counter: Number(m[1]), ref: m[2] as string };
}

/** The worker slot of a worker name like `w3.2`; -1 if the name is malformed. */
export function slotOf(worker: string): number {
  const m = /^w(\d+)\./.exec(worker);
  return m ? Number(m[1]) : -1;
}

/** Parses one printed line; `undefined` for a line that is not a history event (e.g. a log line). */
export function parseEvent(line: string): HistoryEvent | undefined {
  if (!line.startsWith("{")) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return undefined;
  }
  const e = obj as Partial<HistoryEvent>;
  if (typeof e.w !== "string" || typeof e.id !== "number" || typeof e.at !== "number") return undefined;
  if (e.t !== "invoke" && e.t !== "ok" && e.t !== "fail" && e.t !== "info") return undefined;
  return e as HistoryEvent;
}

/** Serialises an event as one line (no newline). */
export function formatEvent(e: HistoryEvent): string {
  return JSON.stringify(e);
}

/** Converts a bigint token for an event (`null` stays `null`). */
export function tokenToEvent(token: bigint | null): string | null {
  return token === null ? null : toWire(token);
}

function tokenFromEvent(token: string | null | undefined): bigint | null {
  return token === null || token === undefined ? null : fromWire(token);
}

/**
 * Joins invoke and completion events into operations, sorted by invoke time. A completion without its
 * invoke is ignored; an invoke without completion becomes an `unknown` operation.
 */
export function foldHistory(events: Iterable<HistoryEvent>): Op[] {
  const open = new Map<string, Op>();
  const ops: Op[] = [];
  for (const e of events) {
    const ref = `${e.w}:${e.id}`;
    if (e.t === "invoke") {
      if (!e.op) continue;
      const op: Op = {
        ref,
        worker: e.w,
        slot: slotOf(e.w),
        id: e.id,
        kind: e.op,
        token: tokenFromEvent(e.token),
        fenced: e.fenced === true,
        outcome: "unknown",
        invokeMs: e.at,
        completeMs: null,
      };
      if (e.lock !== undefined) op.lock = e.lock;
      if (e.key !== undefined) op.key = e.key;
      if (e.fence !== undefined) op.fence = e.fence;
      if (e.op === "write" && typeof e.value === "string") op.written = e.value;
      open.set(ref, op);
      ops.push(op);
      continue;
    }
    const op = open.get(ref);
    if (!op) continue;
    open.delete(ref);
    op.completeMs = e.at;
    op.outcome = e.t === "ok" ? "ok" : e.t === "fail" ? "fail" : "unknown";
    if (e.error !== undefined) op.error = e.error;
    if (op.kind === "lock" && e.t === "ok") op.token = tokenFromEvent(e.token);
    if (op.kind === "read" && e.t === "ok") op.read = e.value ?? null;
  }
  return ops.sort((a, b) => a.invokeMs - b.invokeMs);
}
