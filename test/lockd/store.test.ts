/**
 * The store's commit discipline, in-process on an in-memory database: replies wait for the commit of
 * what they depend on, and reads while a write waits are answered from the committed revision.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { GrpcFrame } from "../../src/lockd/grpc-frame.js";
import { INLINE_VALUE_BYTES } from "../../src/lockd/kv.js";
import { Store } from "../../src/lockd/store.js";
import {
  CompareResult,
  CompareTarget,
  type DeleteRangeResponse,
  etcdServices,
  type RangeResponse,
  SortOrder,
  SortTarget,
  type TxnResponse,
} from "../../src/proto/index.js";

const b = (s: string) => Buffer.from(s);

function order() {
  const log: string[] = [];
  const track = <T>(name: string, p: Promise<T>) =>
    p.then((v) => {
      log.push(name);
      return v;
    });
  return { log, track };
}

test("a read while a write waits for its commit sees the committed revision, at once", async () => {
  const store = new Store({ path: ":memory:" });
  try {
    const first = await store.put({ key: b("k"), value: b("v1") });
    const r1 = BigInt(first.header?.revision ?? "0");
    const { log, track } = order();
    const write = track("write", store.put({ key: b("k"), value: b("v2") }));
    const read = track("read", store.range({ key: b("k") }));
    const readNew = track("read-at-new", store.range({ key: b("k"), revision: `${r1 + 1n}` }));
    const [w, r, rn] = (await Promise.all([write, read, readNew])) as [unknown, RangeResponse, RangeResponse];
    assert.ok(w);
    assert.deepEqual([r.kvs[0]?.value.toString(), BigInt(r.header?.revision ?? "0")], ["v1", r1]);
    assert.deepEqual([rn.kvs[0]?.value.toString(), BigInt(rn.header?.revision ?? "0")], ["v2", r1 + 1n]);
    // The plain read did not wait; the read of the uncommitted revision waited for the commit.
    assert.deepEqual(log, ["read", "write", "read-at-new"]);
    const after = (await store.range({ key: b("k") })) as RangeResponse;
    assert.equal(after.kvs[0]?.value.toString(), "v2");
  } finally {
    store.close();
  }
});

test("a read-only Txn while writes wait for their commit sees the committed revision, at once", async () => {
  const store = new Store({ path: ":memory:" });
  // In-process requests as gRPC's loader hands them over: each oneof names its set member.
  const range = (r: object) => ({ request: "request_range" as const, request_range: r });
  try {
    await store.put({ key: b("q/1"), value: b("one") });
    await store.put({ key: b("q/2"), value: b("two") });
    const last = await store.put({ key: b("k"), value: b("v1") });
    const r1 = BigInt(last.header?.revision ?? "0");
    const { log, track } = order();
    // Pending, in one batch: k changed; then q/1 deleted and q/3 created by one Txn.
    const write = track("write", store.put({ key: b("k"), value: b("v2") }));
    const swap = track(
      "swap",
      store.txn({
        success: [
          { request: "request_delete_range", request_delete_range: { key: b("q/1") } },
          { request: "request_put", request_put: { key: b("q/3"), value: b("three"), lease: "0" } },
        ],
      } as never),
    );
    const queue = { key: b("q/"), range_end: b("q0") };
    const read = track(
      "read",
      store.txn({
        compare: [
          {
            key: b("k"),
            target: CompareTarget.VALUE,
            result: CompareResult.EQUAL,
            target_union: "value",
            value: b("v1"),
          },
        ],
        success: [
          range({ ...queue, sort_order: SortOrder.DESCEND, sort_target: SortTarget.CREATE }),
          { request: "request_txn", request_txn: { success: [range({ ...queue, count_only: true })] } },
        ],
        failure: [],
      } as never),
    );
    // A range at the revision still waiting for its commit waits for it.
    const readNew = track(
      "read-at-new",
      store.txn({ success: [range({ key: b("k"), revision: `${r1 + 1n}` })] } as never),
    );
    const [r, rn] = (await Promise.all([read, readNew, write, swap])) as unknown as [
      TxnResponse,
      TxnResponse,
    ];
    assert.deepEqual(log, ["read", "write", "swap", "read-at-new"]);
    assert.equal(BigInt(r.header?.revision ?? "0"), r1);
    assert.equal(r.succeeded, true);
    const kvs = r.responses[0]?.response_range?.kvs ?? [];
    assert.deepEqual(
      kvs.map((kv) => `${kv.key}=${kv.value}`),
      ["q/2=two", "q/1=one"],
    );
    assert.equal(r.responses[1]?.response_txn?.responses[0]?.response_range?.count, "2");
    assert.equal(rn.responses[0]?.response_range?.kvs[0]?.value.toString(), "v2");
    // Once every write is durable, a read-only Txn reads the index again.
    const now = await store.txn({ success: [range({ ...queue, count_only: true })] } as never);
    assert.deepEqual(
      [now.responses[0]?.response_range?.count, BigInt(now.header?.revision ?? "0")],
      ["2", r1 + 2n],
    );
  } finally {
    store.close();
  }
});

test("a keep-alive waits for the commit of its lease's grant, and answers at once after", async () => {
  const store = new Store({ path: ":memory:" });
  try {
    const { log, track } = order();
    const grant = track("grant", store.grant({ TTL: "30", ID: "77" }));
    const renew = track("renew", store.renew(77n));
    await Promise.all([grant, renew]);
    assert.deepEqual(log, ["grant", "renew"]);
    assert.equal(await renew, 30n);
    const busy = track("busy-write", store.put({ key: b("x"), value: b("1") }));
    const renew2 = track("renew-2", store.renew(77n));
    await Promise.all([busy, renew2]);
    assert.deepEqual(log.slice(2), ["renew-2", "busy-write"]);
  } finally {
    store.close();
  }
});

test("a range during a compaction waits for the commit", async () => {
  const store = new Store({ path: ":memory:" });
  try {
    for (let i = 0; i < 5; i++) await store.put({ key: b("c"), value: b(`${i}`) });
    const { log, track } = order();
    const compact = track("compact", store.compact({ revision: "4" }));
    const read = track("read", store.range({ key: b("c") }));
    await Promise.all([compact, read]);
    assert.deepEqual(log, ["compact", "read"]);
  } finally {
    store.close();
  }
});

/** Decodes an answer that the store encoded in steps, with gRPC's own decoder. */
function decoded<T>(method: "Range" | "DeleteRange", res: unknown): T {
  assert.ok(res instanceof GrpcFrame, "expected an answer encoded in steps");
  const def = etcdServices().KV.service[method] as { responseDeserialize: (b: Buffer) => T };
  return def.responseDeserialize(res.message);
}

/** Values longer than those kept in memory: a stepped answer reads them from SQLite. */
const LONG = INLINE_VALUE_BYTES + 16;

async function filled(n: number): Promise<Store> {
  const store = new Store({ path: ":memory:" });
  for (let i = 0; i < n; i += 100) {
    const success = Array.from({ length: 100 }, (_, j) => ({
      request: "request_put" as const,
      request_put: {
        key: b(`/k/${String(i + j).padStart(5, "0")}`),
        value: b(`v${i + j}`.padEnd(LONG, ".")),
      },
    }));
    await store.txn({ success } as never);
  }
  return store;
}

test("a range read in steps sees its revision, whatever writes land between its steps", async () => {
  const store = await filled(3000);
  try {
    const before = await store.range({ key: b("/k/00000") });
    const rev = BigInt((before as RangeResponse).header?.revision ?? "0");
    const reading = store.range({ key: b("/k/"), range_end: b("/k0") });
    // These land while the read is between steps.
    const writes = Promise.all([
      store.put({ key: b("/k/00005"), value: b("changed") }),
      // A newer long value: the read must pick the row of its own revision.
      store.put({ key: b("/k/00007"), value: b("w7".padEnd(LONG, "-")) }),
      store.put({ key: b("/k/02999"), value: b("changed too") }),
      store.deleteRange({ key: b("/k/00010"), range_end: b("/k/00020") }),
      store.put({ key: b("/k/00010x"), value: b("new") }),
    ]);
    const res = decoded<RangeResponse>("Range", await reading);
    await writes;
    assert.equal(BigInt(res.header?.revision ?? "0"), rev);
    assert.deepEqual([res.count, res.kvs.length], ["3000", 3000]);
    assert.equal(res.kvs[5]?.value.toString(), "v5".padEnd(LONG, "."));
    assert.equal(res.kvs[7]?.value.toString(), "v7".padEnd(LONG, "."));
    assert.equal(res.kvs[2999]?.value.toString(), "v2999".padEnd(LONG, "."));
    assert.equal(res.kvs[12]?.key.toString(), "/k/00012");
    assert.ok(res.kvs.every((kv) => BigInt(kv.mod_revision) <= rev));
    const now = (await store.range({ key: b("/k/00005") })) as RangeResponse;
    assert.equal(now.kvs[0]?.value.toString(), "changed");
  } finally {
    store.close();
  }
});

test("a delete in steps is one revision: reads meanwhile see all or nothing, later writes come after", async () => {
  const store = await filled(3000);
  try {
    const r0 = BigInt(((await store.range({ key: b("/k/00000") })) as RangeResponse).header?.revision ?? "0");
    const deleting = store.deleteRange({ key: b("/k/"), range_end: b("/k0"), prev_kv: true });
    // Issued while the delete applies: the read sees the committed state, the put waits and follows it.
    const during = store.range({ key: b("/k/"), range_end: b("/k0"), count_only: true });
    const put = store.put({ key: b("/k/00001"), value: b("again") });
    const seen = (await during) as RangeResponse;
    const gone = decoded<DeleteRangeResponse>("DeleteRange", await deleting);
    const after = await put;
    assert.equal(seen.count, "3000");
    assert.deepEqual(
      [gone.deleted, gone.prev_kvs.length, BigInt(gone.header?.revision ?? "0")],
      ["3000", 3000, r0 + 1n],
    );
    assert.equal(gone.prev_kvs[2999]?.value.toString(), "v2999".padEnd(LONG, "."));
    assert.equal(BigInt(after.header?.revision ?? "0"), r0 + 2n);
    const changes = store.history(r0 + 1n, r0 + 1n, true);
    assert.deepEqual([changes.length, changes[0]?.events.length], [1, 3000]);
    assert.equal(changes[0]?.events[2999]?.prev?.value, "v2999".padEnd(LONG, "."));
    const left = (await store.range({ key: b("/k/"), range_end: b("/k0") })) as RangeResponse;
    assert.deepEqual(
      left.kvs.map((kv) => kv.key.toString()),
      ["/k/00001"],
    );
  } finally {
    store.close();
  }
});

test("a read of the index while a delete applies in steps waits for it, also behind a compaction", async () => {
  const store = await filled(3000);
  try {
    const r0 = BigInt(((await store.range({ key: b("/k/00000") })) as RangeResponse).header?.revision ?? "0");
    // A pending compaction makes reads use the index rather than the committed revision in SQLite.
    const compact = store.compact({ revision: `${r0}` });
    const deleting = store.deleteRange({ key: b("/k/"), range_end: b("/k0") });
    const during = (await store.range({ key: b("/k/00001") })) as RangeResponse;
    await Promise.all([compact, deleting]);
    // It waited for the delete and sees it whole, never half of it.
    assert.deepEqual([during.count, BigInt(during.header?.revision ?? "0")], ["0", r0 + 1n]);
  } finally {
    store.close();
  }
});
