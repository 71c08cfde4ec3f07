/**
 * `fencelock lockd backup FILE` against a real lockd under write load: the copy is the state at one
 * revision exactly (compared with the original's read at that revision), a fresh lockd starts from it with
 * its leases, and revisions continue above the copy's.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import type {
  LeaseGrantResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
} from "../../src/proto/index.js";
import { CLI_PATH, type LockdInstance, startLockd, type TempDir, tempDir } from "../../src/testkit/index.js";
import { Raw } from "./raw.js";

const run = promisify(execFile);
const b = (s: string) => Buffer.from(s);
const all = { key: b("/bk/"), range_end: b("/bk0") };

describe("lockd backup", { timeout: 120_000 }, () => {
  let source: LockdInstance;
  let fresh: LockdInstance | undefined;
  let dir: TempDir;
  let raw: Raw;

  before(async () => {
    source = await startLockd();
    dir = await tempDir("lockd-backup");
    raw = new Raw(source.endpoint);
  });
  after(async () => {
    raw?.close();
    await fresh?.stop();
    await source?.stop();
    await dir?.remove();
  });

  test("a copy under load holds one revision exactly; a fresh lockd starts from it and goes on", async () => {
    // Enough history that the copy takes several steps, with writes landing between them.
    for (let i = 0; i < 12_000; i += 100) {
      const success = Array.from({ length: 100 }, (_, j) => ({
        request_put: { key: b(`/bk/base/${i + j}`), value: b(`value ${i + j}`.padEnd(90, ".")) },
      }));
      await raw.call("KV", "Txn", { success });
    }
    const lease = await raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", { TTL: "60", ID: "0" });
    await raw.call("KV", "Put", { key: b("/bk/leased"), value: b("x"), lease: lease.ID });
    // Writes go on while the copy is made, from four writers: at most 2,000 puts each, or until it ends.
    let loading = true;
    const load = Promise.all(
      Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; loading && i < 2000; i++)
          await raw.call<PutResponse>("KV", "Put", { key: b(`/bk/load/${w}/${i % 50}`), value: b(`${i}`) });
      }),
    );
    const file = join(dir.path, "copy.db");
    let out: { stdout: string };
    try {
      out = await run(process.execPath, [CLI_PATH, "lockd", "backup", file, "--endpoint", source.endpoint], {
        timeout: 60_000,
      });
    } finally {
      loading = false;
      await load;
    }
    const line = JSON.parse(out.stdout.trim()) as { event: string; revision: string; bytes: number };
    assert.equal(line.event, "backup");
    assert.equal((await stat(file)).size, line.bytes);
    const rev = BigInt(line.revision);
    const now = await raw.call<RangeResponse>("KV", "Range", { key: b("/bk/leased") });
    assert.ok(BigInt(now.header?.revision ?? "0") > rev, "the load wrote nothing after the copy's revision");

    const restored = await tempDir("lockd-restored");
    await copyFile(file, join(restored.path, "lockd.db"));
    fresh = await startLockd({ dataDir: restored.path });
    const freshStop = fresh.stop.bind(fresh);
    fresh.stop = async () => {
      await freshStop();
      await restored.remove();
    };
    const copy = new Raw(fresh.endpoint);
    try {
      const then = await raw.call<RangeResponse>("KV", "Range", { ...all, revision: `${rev}` });
      const got = await copy.call<RangeResponse>("KV", "Range", all);
      assert.equal(BigInt(got.header?.revision ?? "0"), rev);
      assert.equal(got.count, then.count);
      assert.deepEqual(got.kvs, then.kvs);
      const ttl = await copy.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", {
        ID: lease.ID,
        keys: true,
      });
      assert.ok(BigInt(ttl.TTL) > 0n, "the lease did not come back");
      assert.deepEqual(
        ttl.keys.map((k) => k.toString()),
        ["/bk/leased"],
      );
      const next = await copy.call<PutResponse>("KV", "Put", { key: b("/bk/after"), value: b("y") });
      assert.equal(BigInt(next.header?.revision ?? "0"), rev + 1n);
    } finally {
      copy.close();
    }
  });

  test("an unreachable lockd: exit 1, no file left", async () => {
    const file = join(dir.path, "none.db");
    const res = await run(
      process.execPath,
      [CLI_PATH, "lockd", "backup", file, "--endpoint", "127.0.0.1:1", "--timeout", "2"],
      { timeout: 20_000 },
    ).then(
      () => 0,
      (err: { code: number }) => err.code,
    );
    assert.equal(res, 1);
    await assert.rejects(stat(file));
    await assert.rejects(stat(`${file}.part`));
  });
});
