/**
 * lockd's own bounds and bad input, in-process: every bad request gets a gRPC status, changes nothing,
 * and the server keeps serving. Also auto-compaction, the Auth answer and the CLI's flag errors.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { errors, type LockdServer, startLockdServer } from "../../src/lockd/index.js";
import type { PutResponse, RangeResponse } from "../../src/proto/index.js";
import { CLI_PATH } from "../../src/testkit/index.js";
import { Raw, rpcError } from "./raw.js";

const b = (s: string) => Buffer.from(s);

describe("lockd bounds and bad input", { timeout: 60_000 }, () => {
  let server: LockdServer;
  let raw: Raw;
  const logged: string[] = [];

  before(async () => {
    server = await startLockdServer({
      port: 0,
      memory: true,
      quotaBytes: 64 * 1024,
      maxRequestBytes: 32 * 1024,
      maxWatchersPerStream: 2,
      maxTxnOps: 8,
      retentionRevisions: 5n,
      compactIntervalMs: 100,
      progressNotifyMs: 200,
      log: (event) => logged.push(event),
    });
    raw = new Raw(server.endpoint);
  });
  after(async () => {
    raw?.close();
    await server?.close();
  });

  const alive = async () => {
    const res = await raw.call<PutResponse>("KV", "Put", { key: b("/alive"), value: b("yes") });
    assert.ok(BigInt(res.header?.revision ?? "0") > 1n);
  };

  test("listens on loopback by default", () => {
    assert.equal(server.host, "127.0.0.1");
    assert.match(server.endpoint, /^127\.0\.0\.1:\d+$/);
  });

  test("too large requests: etcd's error below the gRPC limit, gRPC's above; nothing stored", async () => {
    const mid = await rpcError(raw.call("KV", "Put", { key: b("/big"), value: Buffer.alloc(40 * 1024) }));
    assert.deepEqual(mid, { code: status.INVALID_ARGUMENT, details: "etcdserver: request is too large" });
    const huge = await rpcError(raw.call("KV", "Put", { key: b("/big"), value: Buffer.alloc(1024 * 1024) }));
    assert.equal(huge.code, status.RESOURCE_EXHAUSTED);
    const got = await raw.call<RangeResponse>("KV", "Range", { key: b("/big") });
    assert.equal(got.count, "0");
    await alive();
  });

  test("the space quota refuses puts, still allows deletes", async () => {
    for (let i = 0; i < 3; i++)
      await raw.call("KV", "Put", { key: b(`/q/${i}`), value: Buffer.alloc(20 * 1024) });
    const full = await rpcError(raw.call("KV", "Put", { key: b("/q/3"), value: Buffer.alloc(20 * 1024) }));
    assert.deepEqual(full, {
      code: status.RESOURCE_EXHAUSTED,
      details: "etcdserver: mvcc: database space exceeded",
    });
    await raw.call("KV", "DeleteRange", { key: b("/q/"), range_end: b("/q0") });
    await raw.call("KV", "Put", { key: b("/q/3"), value: Buffer.alloc(20 * 1024) });
    await raw.call("KV", "DeleteRange", { key: b("/q/3") });
  });

  test("the Txn op budget is configurable, nested transactions counted against their parent", async () => {
    const get = { request_range: { key: b("/a") } };
    const gets = (n: number) => Array.from({ length: n }, () => get);
    const tooMany = {
      code: status.INVALID_ARGUMENT,
      details: "etcdserver: too many operations in txn request",
    };
    assert.deepEqual(await rpcError(raw.call("KV", "Txn", { success: gets(9) })), tooMany);
    // Five at the top leave three for the nested transaction.
    await raw.call("KV", "Txn", { success: [...gets(4), { request_txn: { success: gets(3) } }] });
    assert.deepEqual(
      await rpcError(raw.call("KV", "Txn", { success: [...gets(4), { request_txn: { success: gets(4) } }] })),
      tooMany,
    );
  });

  test("unknown enum values and malformed messages get a status, not a crash", async () => {
    const sort = await rpcError(raw.call("KV", "Range", { key: b("/a"), sort_target: 9 }));
    assert.equal(sort.code, status.INVALID_ARGUMENT);
    const cmp = await rpcError(raw.call("KV", "Txn", { compare: [{ key: b("/a"), target: 7, result: 0 }] }));
    assert.equal(cmp.code, status.INVALID_ARGUMENT);
    const emptyOp = await rpcError(raw.call("KV", "Txn", { success: [{}] }));
    assert.deepEqual(emptyOp, { code: status.INVALID_ARGUMENT, details: "etcdserver: key not found" });
    const garbage = new grpc.Client(server.endpoint, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        garbage.makeUnaryRequest(
          "/etcdserverpb.KV/Put",
          (x: Buffer) => x,
          (x: Buffer) => x,
          Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]),
          (e) => resolve(e),
        ),
      );
      assert.ok(err && err.code !== status.OK, "a malformed message must fail");
    } finally {
      garbage.close();
    }
    await alive();
  });

  test("watchers per stream are bounded; progress notifications arrive", async () => {
    const w = raw.watch();
    w.create({ key: b("/w1"), progress_notify: true });
    w.create({ key: b("/w2") });
    w.create({ key: b("/w3") });
    const first = await w.next();
    const second = await w.next();
    const third = await w.next();
    assert.deepEqual([first.created, first.canceled, second.canceled], [true, false, false]);
    assert.deepEqual(
      [third.created, third.canceled, third.cancel_reason],
      [true, true, "lockd: too many watchers"],
    );
    const progress = await w.next(3000);
    assert.deepEqual([progress.watch_id, progress.events.length], [first.watch_id, 0]);
    w.close();
  });

  test("auto-compaction keeps only the retained revisions", async () => {
    for (let i = 0; i < 20; i++) await raw.call("KV", "Put", { key: b("/auto"), value: b(`${i}`) });
    const deadline = Date.now() + 5000;
    for (;;) {
      const err = await raw.call("KV", "Range", { key: b("/auto"), revision: "2" }).then(
        () => undefined,
        (e: grpc.ServiceError) => e,
      );
      if (err) {
        assert.equal(err.details, "etcdserver: mvcc: required revision has been compacted");
        break;
      }
      assert.ok(Date.now() < deadline, "history was never compacted");
      await new Promise((r) => setTimeout(r, 50));
    }
    const cur = BigInt(
      (await raw.call<RangeResponse>("KV", "Range", { key: b("/auto") })).header?.revision ?? "0",
    );
    const recent = await raw.call<RangeResponse>("KV", "Range", { key: b("/auto"), revision: `${cur - 4n}` });
    assert.equal(recent.count, "1");
  });

  test("Auth answers as an etcd without authentication", async () => {
    const err = await rpcError(raw.call("Auth", "Authenticate", { name: "u", password: "p" }));
    assert.deepEqual(err, {
      code: status.FAILED_PRECONDITION,
      details: "etcdserver: authentication is not enabled",
    });
    assert.deepEqual(logged, []);
  });

  test("docs/lockd.md lists every error of the registry with its gRPC status and message", () => {
    const doc = readFileSync(new URL("../../../docs/lockd.md", import.meta.url), "utf8");
    const names = Object.fromEntries(Object.entries(status).map(([name, code]) => [code, name]));
    const rows = new Set(
      doc
        .split("\n")
        .filter((l) => l.startsWith("| `"))
        .map((l) =>
          l
            .split("|")
            .slice(1, -1)
            .map((c) => c.trim())
            .join(" | "),
        ),
    );
    for (const make of Object.values(errors)) {
      const err = make("(what was wrong)");
      assert.ok(
        rows.has(`\`${err.code}\` | ${names[err.grpcCode]} | ${err.message}`),
        `${err.code} is not documented`,
      );
    }
  });

  test("the CLI rejects bad flags with exit code 2 and documents them", () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, [CLI_PATH, "lockd", ...args], { timeout: 10_000 });
    assert.equal(run(["--bogus"]).status, 2);
    assert.equal(run(["--listen", "nohost"]).status, 2);
    assert.equal(run(["--memory", "--data", "/tmp/x"]).status, 2);
    assert.equal(run(["--retention", "-3"]).status, 2);
    assert.equal(run(["--max-txn-ops", "0"]).status, 2);
    assert.equal(run(["--max-txn-ops", "12x"]).status, 2);
    assert.equal(run(["--metrics-listen", "nohost"]).status, 2);
    const help = run(["--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout.toString(), /--listen HOST:PORT/);
  });
});
