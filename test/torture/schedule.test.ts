import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TortureConfigError } from "../../src/torture/errors.js";
import { createPrng } from "../../src/torture/prng.js";
import { FAULT_KINDS, parseFaults, planFaults, type ScheduleOptions } from "../../src/torture/schedule.js";

const base: ScheduleOptions = {
  seed: "42",
  durationMs: 60_000,
  kinds: ["pause", "kill", "lockd-restart", "storage-restart", "partition"],
  clients: 4,
  members: 1,
  ttlMs: 1000,
  intervalMs: 1500,
};

describe("prng", () => {
  it("gives the same sequence for the same seed and another for another seed", () => {
    const a = createPrng("x");
    const b = createPrng("x");
    const c = createPrng("y");
    const sa = Array.from({ length: 20 }, () => a.next());
    assert.deepEqual(
      sa,
      Array.from({ length: 20 }, () => b.next()),
    );
    assert.notDeepEqual(
      sa,
      Array.from({ length: 20 }, () => c.next()),
    );
    for (const x of sa) assert.ok(x >= 0 && x < 1);
  });

  it("draws integers in range", () => {
    const r = createPrng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) {
      const v = r.between(3, 5);
      assert.ok(v >= 3 && v <= 5);
      seen.add(v);
    }
    assert.deepEqual([...seen].sort(), [3, 4, 5]);
  });
});

describe("fault schedule", () => {
  it("is the same for the same seed, and differs for another", () => {
    assert.deepEqual(planFaults(base), planFaults({ ...base }));
    assert.notDeepEqual(planFaults(base), planFaults({ ...base, seed: "43" }));
  });

  it("keeps every fault inside the run, sequential, and pauses longer than the TTL", () => {
    const plan = planFaults(base);
    assert.ok(plan.length >= 5, `only ${plan.length} faults`);
    let end = 0;
    for (const f of plan) {
      assert.ok(f.atMs >= end, "faults overlap");
      end = f.atMs + f.durationMs;
      assert.ok(end < base.durationMs);
      if (f.kind === "pause") {
        assert.ok(f.durationMs > base.ttlMs);
        assert.ok(f.resume === "timer" || f.resume === "rival-read");
      }
      if (f.slot !== undefined) assert.ok(f.slot >= 0 && f.slot < base.clients);
    }
    const kinds = new Set(plan.map((f) => f.kind));
    for (const k of base.kinds) assert.ok(kinds.has(k), `no ${k} in 60 s`);
  });

  it("plans nothing without fault kinds", () => {
    assert.deepEqual(planFaults({ ...base, kinds: [] }), []);
  });

  it("parses --faults against the backend", () => {
    assert.deepEqual(parseFaults("pause,kill,pause", "lockd"), ["pause", "kill"]);
    assert.deepEqual(parseFaults("none", "etcd"), []);
    assert.deepEqual(
      parseFaults("all", "etcd"),
      FAULT_KINDS.filter((k) => k !== "lockd-restart" && k !== "postgres-restart"),
    );
    assert.throws(() => parseFaults("pause,bogus", "lockd"), TortureConfigError);
    assert.throws(() => parseFaults("etcd-member", "lockd"), /needs the etcd backend/);
    assert.throws(() => parseFaults("lockd-restart", "etcd"), /needs the lockd backend/);
  });

  it("parses --faults against the resource: a server restart only where there is that server", () => {
    assert.deepEqual(parseFaults("all", "lockd", "postgres"), [
      "pause",
      "kill",
      "lockd-restart",
      "partition",
      "postgres-restart",
    ]);
    assert.deepEqual(parseFaults("all", "lockd", "sqlite"), ["pause", "kill", "lockd-restart", "partition"]);
    assert.throws(() => parseFaults("postgres-restart", "lockd"), /needs --resource postgres/);
    assert.throws(() => parseFaults("postgres-restart", "lockd", "sqlite"), /needs --resource postgres/);
    assert.throws(() => parseFaults("storage-restart", "lockd", "postgres"), /needs --resource storage/);
  });

  it("plans PostgreSQL crash-restarts like storage restarts", () => {
    const faults = planFaults({ ...base, kinds: ["postgres-restart"] });
    assert.ok(faults.length > 0);
    for (const f of faults) {
      assert.equal(f.kind, "postgres-restart");
      assert.ok(f.durationMs >= 200 && f.durationMs <= 1500);
    }
  });
});
