/**
 * Torture runs with the counter in a user's database behind the fencing guard: a real PostgreSQL (crashed
 * and restarted as one of the faults) and a SQLite file shared by the worker processes. Unfenced workers
 * (plain transactions) must lose updates when a paused worker writes late; fenced ones must lose none,
 * the database itself refusing the late writes. Fixed seeds, so the fault schedules are fixed: each seed
 * is asserted to plan the pauses that make a late write certain.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DatabaseUnavailableError,
  StaleTokenError,
  TransactionConflictError,
} from "../../src/guard/errors.js";
import { openCounterStore } from "../../src/torture/counter.js";
import {
  DEFAULT_OPTIONS,
  planFaults,
  type ResourceKind,
  runTorture,
  type TortureOptions,
  type TortureResult,
} from "../../src/torture/index.js";

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

function planOf(o: TortureOptions) {
  return planFaults({
    seed: o.seed,
    durationMs: o.durationMs,
    kinds: o.faults,
    clients: o.clients,
    members: 1,
    ttlMs: o.ttl * 1000,
    intervalMs: o.intervalMs,
  });
}

function assertStopped(result: TortureResult): void {
  for (const pid of result.pids) assert.ok(gone(pid), `process ${pid} is still running`);
}

async function unfencedLosesUpdates(resource: ResourceKind, seed: string): Promise<void> {
  const options: TortureOptions = {
    ...DEFAULT_OPTIONS,
    resource,
    mode: "unfenced",
    clients: 3,
    faults: ["pause"],
    durationMs: 10_000,
    seed,
    intervalMs: 800,
  };
  const rivalPauses = planOf(options).filter((f) => f.kind === "pause" && f.resume === "rival-read");
  assert.ok(rivalPauses.length >= 2, "the seed must plan pauses that end at a rival's read");
  const result = await runTorture(options);
  assertStopped(result);
  assert.ok(
    result.faults.some((f) => f.kind === "pause" && !f.error),
    "no pause",
  );
  const lost = result.check.violations.filter((v) => v.kind === "lost-update");
  assert.ok(lost.length >= 1, `no lost update found:\n${JSON.stringify(result.check.counts)}`);
  for (const v of lost) assert.equal(v.writers?.length, 2);
  const key = result.check.keys[0];
  assert.ok(key && key.lost > 0 && key.final !== null && key.final < key.accepted);
  // The database's own record: every write in the audit committed, none carried a token.
  assert.ok(result.audit.length > 0 && result.audit.every((a) => a.op === "write" && a.token === null));
}

async function fencedLosesNothing(options: TortureOptions): Promise<TortureResult> {
  const planned = planOf(options);
  assert.deepEqual(
    [...new Set(planned.map((f) => f.kind))].sort(),
    [...options.faults].sort(),
    "the seed must plan every fault kind",
  );
  const rivalPauses = planned.filter((f) => f.kind === "pause" && f.resume === "rival-read");
  assert.ok(rivalPauses.length >= 2, "the seed must plan pauses that end at a rival's read");
  const result = await runTorture(options);
  assertStopped(result);
  assert.deepEqual(
    result.faults.filter((f) => f.error),
    [],
  );
  assert.deepEqual(result.check.violations, []);
  assert.equal(result.check.ok, true);
  // The database refused a paused holder's late read or write: the pauses did bite.
  const refused = result.ops.filter((o) => o.error === "STALE_FENCING_TOKEN" && o.outcome === "fail");
  assert.ok(refused.length >= 1, "nothing stale was refused: the pauses did not bite");
  const key = result.check.keys[0];
  assert.ok(key && key.accepted > 0 && key.final === key.accepted);
  // Fenced reads are in the database's record too, with the holder's token.
  assert.ok(result.audit.some((a) => a.op === "read" && a.token !== null));
  return result;
}

describe("torture with the counter in PostgreSQL", () => {
  it("unfenced (plain transactions) with pauses: the checker finds lost updates", async () => {
    await unfencedLosesUpdates("postgres", "pg-unfenced-2");
  });

  it("fenced (withFence) with every fault, PostgreSQL crashes included: no violation", async () => {
    const result = await fencedLosesNothing({
      ...DEFAULT_OPTIONS,
      resource: "postgres",
      mode: "fenced",
      clients: 3,
      faults: ["pause", "kill", "lockd-restart", "partition", "postgres-restart"],
      durationMs: 12_000,
      seed: "pg-fenced-58",
      intervalMs: 500,
    });
    assert.ok(result.faults.some((f) => f.kind === "postgres-restart" && f.target === "postgres"));
    // Each crash during the run, and one at the end, was followed by a read of what survived it.
    assert.ok(result.restarts.length >= 2, "PostgreSQL was not restarted");
  });
});

describe("torture with the counter in a shared SQLite file", () => {
  it("unfenced (plain transactions) with pauses: the checker finds lost updates", async () => {
    await unfencedLosesUpdates("sqlite", "sqlite-unfenced-1");
  });

  it("fenced (withFence) with every fault: no violation", async () => {
    await fencedLosesNothing({
      ...DEFAULT_OPTIONS,
      resource: "sqlite",
      mode: "fenced",
      clients: 3,
      faults: ["pause", "kill", "lockd-restart", "partition"],
      durationMs: 10_000,
      seed: "sqlite-fenced-150",
      intervalMs: 500,
    });
  });
});

describe("a database worker's outcomes", () => {
  it("a COMMIT lost in doubt is unknown; a refusal, a conflict or a loss before COMMIT changed nothing", async () => {
    const store = await openCounterStore("postgres", "postgresql://nobody@127.0.0.1:1/none", 1000);
    try {
      assert.equal(store.outcomeOf(new DatabaseUnavailableError("lost during COMMIT", "unknown")), "info");
      assert.equal(store.outcomeOf(new DatabaseUnavailableError("lost", "rolled-back")), "fail");
      assert.equal(store.outcomeOf(new StaleTokenError(1n, 2n, "f")), "fail");
      assert.equal(store.outcomeOf(new TransactionConflictError("busy")), "fail");
      assert.equal(store.outcomeOf(new Error("anything else")), "info");
    } finally {
      await store.close();
    }
  });
});
