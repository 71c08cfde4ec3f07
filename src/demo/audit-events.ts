/**
 * Turns the storage's audit log into the storage lane's events: each write it accepted or refused,
 * with the token it carried, the highest token it had seen, and its own reason and time.
 */
import type { AuditEntry } from "../storage/index.js";
import type { DemoEvent } from "./events.js";

/** The events for the audit entries of writes to `key`, in the storage's order. Pure. */
export function auditEvents(entries: readonly AuditEntry[], key: string): DemoEvent[] {
  const out: DemoEvent[] = [];
  for (const e of entries) {
    if (e.op !== "write" || e.key !== key) continue;
    const token = e.token === null ? "no token" : `token ${e.token}`;
    const max = e.previousMax === null ? "" : `, highest seen ${e.previousMax}`;
    const value = e.value === null ? "" : `"${e.value}"`;
    const event: DemoEvent = {
      timeMs: e.timeMs,
      actor: "storage",
      kind: e.accepted ? "stored" : "rejected",
      what: e.accepted
        ? `accepted write ${value} (${token}${max})`
        : `refused write ${value} (${token}${max}): ${e.reason}`,
      token: e.token,
      maxToken: e.previousMax,
      key: e.key,
      reason: e.reason,
    };
    if (e.value !== null) event.value = e.value;
    out.push(event);
  }
  return out;
}
