// The scenarios between real processes, on the embedded lockd and on a real 3-member etcd cluster.
// Every assertion about the outcome is made against the storage's own state (its value and its audit
// log), read with a separate StorageClient, not against what the demo reported.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runScenario, type ScenarioResult } from "../../src/demo/index.js";
import { type AuditEntry, StorageClient } from "../../src/storage/index.js";
import { type StorageHandle, startEtcdCluster, startLockd, startStorage } from "../../src/testkit/index.js";

interface LockService {
  endpoints: string[];
  stop(): Promise<void>;
}

async function storageState(url: string): Promise<{ value: string | null; writes: AuditEntry[] }> {
  const client = new StorageClient({ url });
  try {
    const value = await client.read("key0");
    const writes = (await client.audit({ limit: 1000 })).filter((e) => e.op === "write" && e.key === "key0");
    return { value: value === null ? null : value.toString("utf8"), writes };
  } finally {
    client.close();
  }
}

function acquiredToken(r: ScenarioResult, actor: "client 1" | "client 2"): bigint {
  const e = r.events.find((x) => x.actor === actor && x.kind === "acquired");
  assert.ok(e && typeof e.token === "bigint", `${actor} reported its token`);
  return e.token;
}

function scenarioSuite(name: string, start: () => Promise<LockService>): void {
  describe(`demo scenarios on ${name}`, () => {
    let service: LockService | undefined;
    let unsafe: StorageHandle | undefined;
    let fenced: StorageHandle | undefined;
    let results: { unsafe: ScenarioResult; fenced: ScenarioResult } | undefined;

    // Both scenarios at once, each with its own lock name and storage, to keep the suite short.
    before(async () => {
      [service, unsafe, fenced] = await Promise.all([
        start(),
        startStorage({ memory: true, allowUnfenced: true }),
        startStorage({ memory: true }),
      ]);
      const endpoints = service.endpoints;
      const [u, f] = await Promise.all([
        runScenario({
          scenario: "unsafe",
          endpoints,
          lockServiceName: name,
          resource: { kind: "storage", url: unsafe.url },
          lockName: "/lock-unsafe",
        }),
        runScenario({
          scenario: "fenced",
          endpoints,
          lockServiceName: name,
          resource: { kind: "storage", url: fenced.url },
          lockName: "/lock-fenced",
        }),
      ]);
      results = { unsafe: u, fenced: f };
    });
    after(async () => {
      await Promise.allSettled([service?.stop(), unsafe?.stop(), fenced?.stop()]);
    });

    test("unsafe: client 1's late write is accepted and overwrites client 2's", async () => {
      assert.ok(unsafe && results);
      const r = results.unsafe;
      const state = await storageState(unsafe.url);
      assert.equal(state.value, "value from client 1");
      assert.deepEqual(
        state.writes.map((w) => [w.value, w.accepted, w.token]),
        [
          ["value from client 2", true, null],
          ["value from client 1", true, null],
        ],
      );
      // Client 1 wrote after the lock service had let its lease go and given the lock to client 2.
      const expired = r.events.find((e) => e.actor === "lock service" && e.kind === "expired");
      const c1write = r.events.find((e) => e.actor === "client 1" && e.kind === "write");
      assert.ok(expired && c1write && expired.timeMs < c1write.timeMs);
      assert.ok(acquiredToken(r, "client 1") < acquiredToken(r, "client 2"));
      assert.deepEqual(r.exitCodes, { client1: 0, client2: 0 });
      assert.equal(r.finalValue, state.value);
      assert.equal(r.verdict.correct, false);
    });

    test("fenced: client 1's write is refused with the lower token; client 2's value stays", async () => {
      assert.ok(fenced && results);
      const r = results.fenced;
      const t1 = acquiredToken(r, "client 1");
      const t2 = acquiredToken(r, "client 2");
      const state = await storageState(fenced.url);
      assert.equal(state.value, "value from client 2");
      assert.equal(state.writes.length, 2);
      const [first, second] = state.writes as [AuditEntry, AuditEntry];
      assert.deepEqual([first.value, first.accepted, first.token], ["value from client 2", true, t2]);
      assert.deepEqual([second.accepted, second.token, second.previousMax], [false, t1, t2]);
      assert.ok(t1 < t2, `refused token ${t1} is lower than ${t2}`);
      assert.deepEqual(r.exitCodes, { client1: 3, client2: 0 });
      assert.equal(r.verdict.correct, true);
      const refused = r.events.find((e) => e.actor === "client 1" && e.kind === "refused");
      assert.equal(refused?.token, t1);
      assert.equal(refused?.maxToken, t2);
    });
  });
}

scenarioSuite("lockd", async () => startLockd({ memory: true }));
scenarioSuite("etcd (3 members)", async () => startEtcdCluster({ size: 3 }));
