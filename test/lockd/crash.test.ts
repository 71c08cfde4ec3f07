/**
 * Durability: lockd is SIGKILLed at a random moment under a load of puts and lock cycles, restarted on
 * the same data, and must still hold every acknowledged write, continue with higher revisions (never
 * reusing one), and bring its leases back with a fresh TTL. Also: a graceful SIGTERM keeps everything.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type {
  LeaseGrantResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from "../../src/proto/index.js";
import { type LockdInstance, startLockd } from "../../src/testkit/index.js";
import { Raw } from "./raw.js";

const b = (s: string) => Buffer.from(s);

interface Acked {
  puts: Map<string, { value: string; rev: bigint }>;
  tokens: bigint[];
  leases: Map<string, string[]>;
  maxRev: bigint;
  /** What reads returned: each must be in the history that survives the crash. */
  seen: { key: string; value: string; rev: bigint }[];
}

/** Runs puts and lock cycles on `workers` connections until the server dies or the bounds are hit. */
async function load(endpoint: string, round: number, acked: Acked, workers: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  const run = async (w: number) => {
    const raw = new Raw(endpoint);
    try {
      const lease = await raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", { TTL: "60" });
      acked.leases.set(lease.ID, []);
      for (let i = 0; i < 2000 && Date.now() < deadline; i++) {
        const key = `/crash/${round}/${w}/${i}`;
        const value = `v${round}.${w}.${i}`;
        const leased = i % 5 === 0;
        const res = await raw.call<PutResponse>("KV", "Put", {
          key: b(key),
          value: b(value),
          lease: leased ? lease.ID : "0",
        });
        const rev = BigInt(res.header?.revision ?? "0");
        acked.puts.set(key, { value, rev });
        if (leased) acked.leases.get(lease.ID)?.push(key);
        if (rev > acked.maxRev) acked.maxRev = rev;
        // One lock cycle as etcd's mutex does it: put-if-absent on the lease's key, then a guarded delete.
        const lockKey = b(`/crash-lock/${BigInt(lease.ID).toString(16)}`);
        const lock = await raw.call<TxnResponse>("KV", "Txn", {
          compare: [{ key: lockKey, target: 1, result: 0, create_revision: "0" }],
          success: [{ request_put: { key: lockKey, value: b(""), lease: lease.ID } }],
        });
        const token = BigInt(lock.header?.revision ?? "0");
        acked.tokens.push(token);
        if (token > acked.maxRev) acked.maxRev = token;
        await raw.call<TxnResponse>("KV", "Txn", {
          compare: [{ key: lockKey, target: 1, result: 0, create_revision: `${token}` }],
          success: [{ request_delete_range: { key: lockKey } }],
        });
      }
    } catch {
      // The server was killed: what was acknowledged so far is what counts.
    } finally {
      raw.close();
    }
  };
  // A reader beside the writers: a read must never show a write that a crash can still take back.
  const read = async () => {
    const raw = new Raw(endpoint);
    try {
      for (let i = 0; i < 5000 && Date.now() < deadline; i++) {
        const res = await raw.call<RangeResponse>("KV", "Range", {
          key: b(`/crash/${round}/`),
          range_end: b(`/crash/${round}0`),
          sort_order: 2,
          sort_target: 3,
          limit: "3",
        });
        for (const kv of res.kvs) {
          acked.seen.push({
            key: kv.key.toString(),
            value: kv.value.toString(),
            rev: BigInt(kv.mod_revision),
          });
        }
      }
    } catch {
      // The server was killed.
    } finally {
      raw.close();
    }
  };
  await Promise.all([...Array.from({ length: workers }, (_, w) => run(w)), read()]);
}

describe("lockd durability", { timeout: 90_000 }, () => {
  const started: LockdInstance[] = [];
  after(async () => {
    for (const s of started) await s.stop();
  });

  test("SIGKILL at random moments under load: acknowledged writes survive, revisions continue", async () => {
    const lockd = await startLockd();
    started.push(lockd);
    const acked: Acked = { puts: new Map(), tokens: [], leases: new Map(), maxRev: 0n, seen: [] };
    for (let round = 0; round < 3; round++) {
      const before = acked.maxRev;
      const ackedBefore = acked.puts.size;
      const running = load(lockd.endpoint, round, acked, 6);
      // Kill at a random moment once the load is under way (bounded: at most 10 s of waiting).
      const deadline = Date.now() + 10_000;
      while (acked.puts.size < ackedBefore + 15 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 700)));
      await lockd.kill();
      await running;
      assert.ok(acked.maxRev > before, `round ${round} acknowledged nothing`);
      await lockd.restart();
      const raw = new Raw(lockd.endpoint);
      try {
        for (const [key, { value, rev }] of acked.puts) {
          const res = await raw.call<RangeResponse>("KV", "Range", { key: b(key) });
          const kv = res.kvs[0];
          assert.ok(kv, `acknowledged key ${key} (revision ${rev}) is missing after the crash`);
          assert.deepEqual([kv.value.toString(), BigInt(kv.mod_revision)], [value, rev]);
        }
        for (const { key, value, rev } of acked.seen.splice(0)) {
          const res = await raw.call<RangeResponse>("KV", "Range", { key: b(key), revision: `${rev}` });
          assert.equal(res.kvs[0]?.value.toString(), value, `a read showed ${key}@${rev}, lost in the crash`);
        }
        const after = await raw.call<PutResponse>("KV", "Put", {
          key: b(`/crash/after/${round}`),
          value: b("x"),
        });
        assert.ok(
          BigInt(after.header?.revision ?? "0") > acked.maxRev,
          "a revision was reused after the crash",
        );
        acked.maxRev = BigInt(after.header?.revision ?? "0");
        for (const [id, keys] of acked.leases) {
          const ttl = await raw.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", {
            ID: id,
            keys: true,
          });
          assert.equal(ttl.grantedTTL, "60", `lease ${id} lost`);
          const attached = new Set(ttl.keys.map((k) => k.toString()));
          for (const k of keys) assert.ok(attached.has(k), `key ${k} lost its lease ${id}`);
        }
      } finally {
        raw.close();
      }
    }
    // Every acknowledged revision is distinct: no revision was handed out twice across the crashes.
    const revs = [...[...acked.puts.values()].map((p) => p.rev), ...acked.tokens];
    assert.equal(new Set(revs).size, revs.length);
    assert.ok(acked.puts.size >= 45, `only ${acked.puts.size} puts were acknowledged`);
  });

  test("leases come back with a fresh TTL and still expire; SIGTERM closes gracefully", async () => {
    const lockd = await startLockd();
    started.push(lockd);
    let raw = new Raw(lockd.endpoint);
    const lease = await raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", { TTL: "3" });
    await raw.call("KV", "Put", { key: b("/fresh/k"), value: b("v"), lease: lease.ID });
    await raw.call("KV", "Put", { key: b("/fresh/kept"), value: b("v".repeat(500)) });
    raw.close();
    await new Promise((r) => setTimeout(r, 2200));
    await lockd.kill();
    await lockd.restart();
    raw = new Raw(lockd.endpoint);
    try {
      const ttl = await raw.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", {
        ID: lease.ID,
        keys: true,
      });
      assert.ok(BigInt(ttl.TTL) >= 2n, `remaining TTL ${ttl.TTL} is not fresh`);
      assert.deepEqual(
        ttl.keys.map((k) => k.toString()),
        ["/fresh/k"],
      );
      const deadline = Date.now() + 6000;
      while ((await raw.call<RangeResponse>("KV", "Range", { key: b("/fresh/k") })).count !== "0") {
        assert.ok(Date.now() < deadline, "the restored lease never expired");
        await new Promise((r) => setTimeout(r, 100));
      }
      const rev = (await raw.call<RangeResponse>("KV", "Range", { key: b("/fresh/kept") })).header?.revision;
      raw.close();
      await lockd.child.stop();
      assert.equal(await lockd.child.exited, 0, "SIGTERM must end lockd with exit code 0");
      await lockd.restart();
      raw = new Raw(lockd.endpoint);
      const again = await raw.call<RangeResponse>("KV", "Range", { key: b("/fresh/kept") });
      assert.deepEqual([again.count, again.header?.revision], ["1", rev]);
      assert.equal(again.kvs[0]?.value.toString(), "v".repeat(500));
    } finally {
      raw.close();
    }
  });

  test("a second lockd on the same data directory refuses to start; the first keeps serving", async () => {
    const first = await startLockd();
    started.push(first);
    const raw = new Raw(first.endpoint);
    try {
      await raw.call("KV", "Put", { key: b("/owner"), value: b("first") });
      const err = await startLockd({ dataDir: first.dataDir, timeoutMs: 15_000 }).then(
        async (second) => {
          await second.stop();
          return undefined;
        },
        (e: unknown) => e as Error,
      );
      assert.ok(err, "a second lockd started on a database another one holds");
      assert.match(err.message, /exited \(\d+\) before it was ready|lockd database/);
      const got = await raw.call<RangeResponse>("KV", "Range", { key: b("/owner") });
      assert.equal(got.kvs[0]?.value.toString(), "first");
      await raw.call("KV", "Put", { key: b("/owner"), value: b("still") });
    } finally {
      raw.close();
    }
  });
});
