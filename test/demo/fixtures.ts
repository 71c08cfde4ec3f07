/**
 * Event lists for the unit tests of the pure parts, shaped like a real run's (the lock service's
 * events still unattributed, as the watch reports them).
 */
import type { DemoEvent } from "../../src/demo/index.js";

/** Epoch ms of the fixture's scenario start. */
export const T0 = 1_700_000_000_000;

const L1 = "694d82254d5fa305";
const L2 = "694d82254e18770a";

/**
 * Client 1 takes token `t1`, is frozen, its lease expires, client 2 takes `t1 + 1` and writes, client 1
 * resumes and writes. `fenced` decides the tokens on the writes and the storage's answer to client 1.
 */
export function scenarioEvents(fenced: boolean, t1 = 7n): DemoEvent[] {
  const t2 = t1 + 1n;
  const at = (ms: number) => T0 + ms;
  const wt1 = fenced ? t1 : null;
  const wt2 = fenced ? t2 : null;
  return [
    { timeMs: at(0), actor: "demo", kind: "scenario", what: "scenario" },
    { timeMs: at(100), actor: "client 1", kind: "start", what: "client 1 starts" },
    { timeMs: at(300), actor: "client 1", kind: "connected", what: "connected", leaseId: L1 },
    { timeMs: at(301), actor: "client 1", kind: "waiting", what: "waiting", leaseId: L1 },
    { timeMs: at(310), actor: "lock service", kind: "granted", what: "", token: t1, leaseId: L1 },
    { timeMs: at(320), actor: "client 1", kind: "acquired", what: "acquired", token: t1, leaseId: L1 },
    { timeMs: at(321), actor: "client 1", kind: "pause", what: "pause", token: t1, mode: "sigstop" },
    { timeMs: at(330), actor: "demo", kind: "freeze", what: "SIGSTOP" },
    { timeMs: at(1200), actor: "client 2", kind: "start", what: "client 2 starts" },
    { timeMs: at(1400), actor: "client 2", kind: "connected", what: "connected", leaseId: L2 },
    { timeMs: at(1401), actor: "client 2", kind: "waiting", what: "waiting", leaseId: L2 },
    { timeMs: at(1410), actor: "lock service", kind: "queued", what: "", token: t2, leaseId: L2 },
    { timeMs: at(2330), actor: "lock service", kind: "deleted", what: "", token: t1, leaseId: L1 },
    { timeMs: at(2331), actor: "lock service", kind: "granted", what: "", token: t2, leaseId: L2 },
    { timeMs: at(2340), actor: "client 2", kind: "acquired", what: "acquired", token: t2, leaseId: L2 },
    {
      timeMs: at(2350),
      actor: "client 2",
      kind: "write",
      what: "w",
      token: wt2,
      value: "value from client 2",
    },
    {
      timeMs: at(2360),
      actor: "storage",
      kind: "stored",
      what: "",
      token: wt2,
      maxToken: null,
      value: "value from client 2",
    },
    { timeMs: at(2370), actor: "client 2", kind: "accepted", what: "ok", token: wt2 },
    { timeMs: at(2380), actor: "client 2", kind: "unlock", what: "releasing" },
    { timeMs: at(2390), actor: "lock service", kind: "deleted", what: "", token: t2, leaseId: L2 },
    { timeMs: at(2400), actor: "client 2", kind: "exit", what: "exit", exitCode: 0 },
    { timeMs: at(2500), actor: "demo", kind: "thaw", what: "SIGCONT" },
    {
      timeMs: at(2530),
      actor: "client 1",
      kind: "resumed",
      what: "resumed",
      pausedMs: 2200,
      mode: "sigstop",
    },
    {
      timeMs: at(2531),
      actor: "client 1",
      kind: "write",
      what: "w",
      token: wt1,
      value: "value from client 1",
    },
    {
      timeMs: at(2540),
      actor: "storage",
      kind: fenced ? "rejected" : "stored",
      what: "",
      token: wt1,
      maxToken: fenced ? t2 : null,
      value: "value from client 1",
      reason: fenced ? `stale token ${t1} < max ${t2}` : "",
    },
    {
      timeMs: at(2550),
      actor: "client 1",
      kind: fenced ? "refused" : "accepted",
      what: "answer",
      token: wt1,
      maxToken: fenced ? t2 : undefined,
    },
    { timeMs: at(2560), actor: "client 1", kind: "unlock", what: "releasing" },
    { timeMs: at(2570), actor: "client 1", kind: "exit", what: "exit", exitCode: fenced ? 3 : 0 },
  ];
}
