/**
 * The events of a demo run: what each process reported about itself (the clients), what the lock
 * service showed (its keys, watched), what the storage recorded (its audit log), and what the demo did
 * (freeze, thaw). Clients print them as one JSON line each; tokens travel as decimal strings.
 */

/** Who an event is about: one lane of the timeline each, plus the demo itself. */
export type Actor = "client 1" | "client 2" | "lock service" | "storage" | "demo";

/** The actors that have a lane in the timeline, in the order of Kleppmann's figures. */
export const LANES: readonly Actor[] = ["client 1", "lock service", "client 2", "storage"];

/**
 * What happened. Clients: `start`, `connected`, `waiting`, `acquired`, `pause` (about to stop),
 * `resumed`, `write` (sending), `accepted`, `refused`, `unlock` (about to release), `error`, `exit`.
 * Lock service: `granted` (a key became the oldest: it holds the lock), `queued` (a key waits behind an
 * older one), `deleted` (a key went away; `expired` or `released` once attributed). Storage: `stored`,
 * `rejected`. Demo: `scenario`, `freeze`, `thaw`, `key`, `final`.
 */
export type EventKind =
  | "start"
  | "connected"
  | "waiting"
  | "acquired"
  | "pause"
  | "resumed"
  | "write"
  | "accepted"
  | "refused"
  | "unlock"
  | "error"
  | "exit"
  | "granted"
  | "queued"
  | "deleted"
  | "expired"
  | "released"
  | "stored"
  | "rejected"
  | "scenario"
  | "freeze"
  | "thaw"
  | "key"
  | "final";

/** One event. `timeMs` is epoch milliseconds of the process that reported it (all on one machine). */
export interface DemoEvent {
  timeMs: number;
  actor: Actor;
  kind: EventKind;
  /** A human sentence, e.g. `acquired lock /lock with fencing token 7`. */
  what: string;
  /** The fencing token involved, `null` for a write sent without one. */
  token?: bigint | null;
  /** The highest token the storage had seen (on a refusal). */
  maxToken?: bigint | null;
  /** Lease ID in hex, as in the lock key `<name>/<leaseId hex>`. */
  leaseId?: string;
  /** The lock key or the storage key involved. */
  key?: string;
  /** The value written. */
  value?: string;
  /** The pause mode (`sigstop`, `keypress`, `gc`, `block`) of a `pause` or `resumed` event. */
  mode?: string;
  /** How long the process was stopped, measured by the process itself. */
  pausedMs?: number;
  /** The storage's reason for a refusal, or an error's message. */
  reason?: string;
  /** A process's exit code. */
  exitCode?: number;
}

const ACTORS = new Set<string>(["client 1", "client 2", "lock service", "storage", "demo"]);
const KINDS = new Set<string>([
  "start",
  "connected",
  "waiting",
  "acquired",
  "pause",
  "resumed",
  "write",
  "accepted",
  "refused",
  "unlock",
  "error",
  "exit",
  "granted",
  "queued",
  "deleted",
  "expired",
  "released",
  "stored",
  "rejected",
  "scenario",
  "freeze",
  "thaw",
  "key",
  "final",
]);

/** Serialises an event as one JSON line (no newline); bigints become decimal strings. */
export function eventToJson(event: DemoEvent): string {
  const out: Record<string, unknown> = {
    time: event.timeMs,
    actor: event.actor,
    kind: event.kind,
    what: event.what,
  };
  for (const [name, value] of Object.entries(event)) {
    if (name === "timeMs" || name === "actor" || name === "kind" || name === "what") continue;
    if (value === undefined) continue;
    out[name] = typeof value === "bigint" ? value.toString(10) : value;
  }
  return JSON.stringify(out);
}

const DECIMAL = /^-?\d+$/;

function optionalBigint(value: unknown): bigint | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value === "string" && DECIMAL.test(value)) return BigInt(value);
  return undefined;
}

/**
 * Parses a line printed by `eventToJson`. Returns `undefined` for anything else (a log line, a torn
 * line, an unknown actor or kind), so a stray line in a child's output never becomes an event.
 */
export function eventFromJson(line: string): DemoEvent | undefined {
  if (!line.startsWith("{")) return undefined;
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { time, actor, kind, what } = raw;
  if (typeof time !== "number" || !Number.isFinite(time)) return undefined;
  if (typeof actor !== "string" || !ACTORS.has(actor)) return undefined;
  if (typeof kind !== "string" || !KINDS.has(kind)) return undefined;
  if (typeof what !== "string") return undefined;
  const event: DemoEvent = { timeMs: time, actor: actor as Actor, kind: kind as EventKind, what };
  const token = optionalBigint(raw.token);
  if (token !== undefined) event.token = token;
  const maxToken = optionalBigint(raw.maxToken);
  if (maxToken !== undefined) event.maxToken = maxToken;
  for (const name of ["leaseId", "key", "value", "reason", "mode"] as const) {
    const v = raw[name];
    if (typeof v === "string") event[name] = v;
  }
  if (typeof raw.pausedMs === "number") event.pausedMs = raw.pausedMs;
  if (typeof raw.exitCode === "number") event.exitCode = raw.exitCode;
  return event;
}

/** Orders events by time; events with the same time keep their arrival order. */
export function byTime(events: readonly DemoEvent[]): DemoEvent[] {
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.timeMs - b.e.timeMs || a.i - b.i)
    .map((x) => x.e);
}

/** The token as people read it: `7`, or `none` for a write without one. */
export function tokenText(token: bigint | null | undefined): string {
  return token === null || token === undefined ? "none" : token.toString(10);
}
