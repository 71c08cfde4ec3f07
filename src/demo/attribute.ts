/**
 * Names the owners of the lock service's events. The lock service only shows keys and leases; the
 * clients report which lease is theirs. A deleted key whose owner had not said it was releasing the
 * lock was removed by the lock service itself: its lease expired.
 */
import type { Actor, DemoEvent } from "./events.js";

/** Maps lease IDs (hex) to the client that reported them. */
export function leaseOwners(events: readonly DemoEvent[]): Map<string, Actor> {
  const owners = new Map<string, Actor>();
  for (const e of events) {
    if ((e.actor === "client 1" || e.actor === "client 2") && e.leaseId !== undefined) {
      owners.set(e.leaseId, e.actor);
    }
  }
  return owners;
}

function ownerName(owners: Map<string, Actor>, leaseId: string | undefined): string {
  const owner = leaseId === undefined ? undefined : owners.get(leaseId);
  return owner ?? `lease ${leaseId ?? "?"}`;
}

/**
 * Returns the events with the lock service's `granted`, `queued` and `deleted` events described by
 * owner, and each `deleted` turned into `released` (its owner reported `unlock` at or before that
 * time) or `expired` (it did not). Other events are returned unchanged. Pure.
 */
export function attributeLockEvents(events: readonly DemoEvent[]): DemoEvent[] {
  const owners = leaseOwners(events);
  return events.map((e) => {
    if (e.actor !== "lock service") return e;
    const who = ownerName(owners, e.leaseId);
    const token = e.token === undefined || e.token === null ? "?" : e.token.toString(10);
    if (e.kind === "granted") return { ...e, what: `lock held by ${who} (token ${token})` };
    if (e.kind === "queued") return { ...e, what: `${who} queued for the lock (token ${token})` };
    if (e.kind !== "deleted") return e;
    const owner = e.leaseId === undefined ? undefined : owners.get(e.leaseId);
    const unlocked = events.some(
      (u) => u.actor === owner && u.kind === "unlock" && u.timeMs <= e.timeMs && owner !== undefined,
    );
    if (unlocked) return { ...e, kind: "released", what: `${who} released the lock (token ${token})` };
    return { ...e, kind: "expired", what: `lease of ${who} expired: its lock key is gone (token ${token})` };
  });
}
