/**
 * Judges a scenario from what happened: the value the storage holds at the end against the value of
 * the client that held the lock last (the highest token), and which writes came from a client whose
 * lease had already expired.
 */
import type { Actor, DemoEvent } from "./events.js";

/** A write as the storage recorded it, tied to the client that sent it. */
export interface JudgedWrite {
  actor: Actor;
  token: bigint | null;
  value: string;
  accepted: boolean;
  /** The highest token the storage had seen before this write. */
  maxToken: bigint | null;
  /** The writer's lease had expired (the lock service said so) before it sent the write. */
  stale: boolean;
  reason: string;
}

/** The outcome of a scenario. */
export interface Verdict {
  /** The value in the storage at the end (read from the storage), `null` if the key does not exist. */
  finalValue: string | null;
  /** The value of the last lock holder's write: what a correct lock leaves. */
  expectedValue: string | null;
  correct: boolean;
  writes: JudgedWrite[];
  /** One sentence for people. */
  text: string;
}

function isClient(actor: Actor): boolean {
  return actor === "client 1" || actor === "client 2";
}

/** A client's `write` event and the storage's `stored`/`rejected` record of it. */
export interface WritePair {
  /** The client's report of sending it, if one matches. */
  send: DemoEvent | undefined;
  /** The storage's audit record. */
  answer: DemoEvent;
}

/**
 * Pairs each storage `stored`/`rejected` event with the client `write` it records: the same value
 * (each client writes its own), else the same token, else the earliest unpaired one. Pure.
 */
export function pairWrites(events: readonly DemoEvent[]): WritePair[] {
  const sends = events.filter((e) => isClient(e.actor) && e.kind === "write");
  const used = new Set<DemoEvent>();
  const pairs: WritePair[] = [];
  for (const answer of events) {
    if (answer.actor !== "storage" || (answer.kind !== "stored" && answer.kind !== "rejected")) continue;
    const free = sends.filter((w) => !used.has(w));
    const send =
      (answer.value !== undefined ? free.find((w) => w.value === answer.value) : undefined) ??
      (typeof answer.token === "bigint" ? free.find((w) => w.token === answer.token) : undefined) ??
      free[0];
    if (send) used.add(send);
    pairs.push({ send, answer });
  }
  return pairs;
}

/**
 * Ties each write the storage recorded to the client that sent it, and marks it stale when that
 * client's lease had expired before it sent the write. Pure.
 */
export function judgeWrites(events: readonly DemoEvent[]): JudgedWrite[] {
  const expiredAt = new Map<string, number>();
  for (const e of events) {
    if (e.actor === "lock service" && e.kind === "expired" && e.leaseId !== undefined) {
      expiredAt.set(e.leaseId, Math.min(e.timeMs, expiredAt.get(e.leaseId) ?? Number.POSITIVE_INFINITY));
    }
  }
  const leaseOf = new Map<Actor, string>();
  for (const e of events) if (isClient(e.actor) && e.leaseId !== undefined) leaseOf.set(e.actor, e.leaseId);
  const out: JudgedWrite[] = [];
  for (const { send, answer } of pairWrites(events)) {
    if (!send) continue;
    const lease = leaseOf.get(send.actor);
    const expiry = lease === undefined ? undefined : expiredAt.get(lease);
    out.push({
      actor: send.actor,
      token: answer.token ?? null,
      value: answer.value ?? send.value ?? "",
      accepted: answer.kind === "stored",
      maxToken: answer.maxToken ?? null,
      stale: expiry !== undefined && expiry <= send.timeMs,
      reason: answer.reason ?? "",
    });
  }
  return out;
}

/** The client that acquired the highest token, and that token. */
function lastHolder(events: readonly DemoEvent[]): { actor: Actor; token: bigint } | undefined {
  let best: { actor: Actor; token: bigint } | undefined;
  for (const e of events) {
    if (!isClient(e.actor) || e.kind !== "acquired" || typeof e.token !== "bigint") continue;
    if (!best || e.token > best.token) best = { actor: e.actor, token: e.token };
  }
  return best;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function quote(value: string | null): string {
  return value === null ? "(no value)" : `"${value}"`;
}

/** Judges a scenario from its events and the final value read from the storage. Pure. */
export function judge(events: readonly DemoEvent[], finalValue: string | null): Verdict {
  const writes = judgeWrites(events);
  const holder = lastHolder(events);
  const holderWrite = holder ? writes.find((w) => w.actor === holder.actor) : undefined;
  const expectedValue = holderWrite?.value ?? null;
  const correct = expectedValue !== null && finalValue === expectedValue;
  const staleAccepted = writes.find((w) => w.stale && w.accepted);
  const refused = writes.find((w) => !w.accepted);
  let text: string;
  if (!correct && staleAccepted && holder) {
    text =
      `WRONG: final value ${quote(finalValue)}. ${capitalise(staleAccepted.actor)} wrote after its lease had expired, ` +
      `and the storage accepted it, overwriting ${holder.actor}'s write made while holding the lock.`;
  } else if (!correct) {
    text = `WRONG: final value ${quote(finalValue)}, expected ${quote(expectedValue)} (the last lock holder's).`;
  } else if (refused) {
    const t = refused.token === null ? "no token" : `token ${refused.token}`;
    const max = refused.maxToken === null ? "" : ` < ${refused.maxToken}`;
    text =
      `RIGHT: final value ${quote(finalValue)}. The storage refused ${refused.actor}'s late write ` +
      `(${t}${max}): fencing kept the lock holder's data.`;
  } else {
    text = `RIGHT: final value ${quote(finalValue)}, written by the last lock holder.`;
  }
  return { finalValue, expectedValue, correct, writes, text };
}
