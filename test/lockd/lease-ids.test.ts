/**
 * Lease IDs grow like etcd's and never go back: within a server's life, across SIGKILL restarts of a real
 * lockd, and when the clock went back between two starts on the same database file.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { LockdDb } from "../../src/lockd/db.js";
import { LeaseIdGenerator } from "../../src/lockd/lease-ids.js";
import type { LeaseGrantResponse } from "../../src/proto/index.js";
import { type LockdInstance, startLockd } from "../../src/testkit/index.js";
import { Raw, rpcError } from "./raw.js";

const MAX_INT64 = 0x7fff_ffff_ffff_ffffn;

function assertIncreasing(ids: bigint[]): void {
  for (let i = 1; i < ids.length; i++) {
    assert.ok(
      ids[i - 1] !== undefined && (ids[i] as bigint) > (ids[i - 1] as bigint),
      `ID ${i} is not larger`,
    );
  }
}

describe("lease IDs", { timeout: 120_000 }, () => {
  const started: LockdInstance[] = [];
  const dirs: string[] = [];
  after(async () => {
    for (const s of started) await s.stop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test("etcd's layout: member prefix in bits 48-62, then (ms << 8) counting up per grant", () => {
    const db = new LockdDb(":memory:");
    try {
      const ms = 1_796_000_000_123;
      const gen = new LeaseIdGenerator(db, 0x1234_5678_9abc_def0n, () => ms);
      const first = gen.next();
      assert.equal(first >> 48n, 0x5ef0n);
      assert.equal(first & 0xffff_ffff_ffffn, (BigInt(ms) << 8n) & 0xffff_ffff_ffffn);
      assert.equal(gen.next(), first + 1n);
      // The highest prefix is kept free of IDs so that room is left above any start.
      const top = new LeaseIdGenerator(db, 0x7fffn, () => ms).next();
      assert.ok(top > 0n && top <= MAX_INT64 - (1n << 48n), `${top} leaves no room`);
    } finally {
      db.close();
    }
  });

  test("a clock that went back between two starts on one database file does not make IDs smaller", async () => {
    const dir = await mkdtemp(join(tmpdir(), "fencelock-leaseids-"));
    dirs.push(dir);
    const path = join(dir, "lockd.sqlite");
    const ids: bigint[] = [];
    let now = 1_796_000_000_000;
    for (let start = 0; start < 3; start++) {
      const db = new LockdDb(path);
      try {
        const gen = new LeaseIdGenerator(db, 42n, () => now);
        // Grants as the store makes them: inside the batch's transaction, then committed.
        db.begin();
        for (let i = 0; i < 300; i++) ids.push(gen.next());
        db.commit();
      } finally {
        db.close();
      }
      now -= 3_600_000;
    }
    assert.equal(ids.length, 900);
    assertIncreasing(ids);
  });

  test("a real lockd: grants stay strictly increasing across SIGKILL restarts; chosen IDs still work", async () => {
    const lockd = await startLockd();
    started.push(lockd);
    const ids: bigint[] = [];
    for (let round = 0; round < 4; round++) {
      const raw = new Raw(lockd.endpoint);
      try {
        // Concurrent grants, so several land in one commit batch.
        for (let burst = 0; burst < 10; burst++) {
          const grants = await Promise.all(
            Array.from({ length: 20 }, () =>
              raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", { TTL: "30" }),
            ),
          );
          const got = grants.map((g) => BigInt(g.ID)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          ids.push(...got);
        }
        // A client-chosen ID, as etcd allows: granted as asked, and a second grant of it is refused.
        const chosen = 1000n + BigInt(round);
        const mine = await raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", {
          ID: `${chosen}`,
          TTL: "30",
        });
        assert.equal(BigInt(mine.ID), chosen);
        const again = await rpcError(raw.call("Lease", "LeaseGrant", { ID: `${chosen}`, TTL: "30" }));
        assert.equal(again.details, "etcdserver: lease already exists");
      } finally {
        raw.close();
      }
      await lockd.kill();
      await lockd.restart();
    }
    assert.equal(ids.length, 800);
    assertIncreasing(ids);
    for (const id of ids) assert.ok(id > 0n && id <= MAX_INT64);
  });
});
