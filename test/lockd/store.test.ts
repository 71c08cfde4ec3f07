/**
 * The store's commit discipline, in-process on an in-memory database: replies wait for the commit of
 * what they depend on, and reads while a write waits are answered from the committed revision.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Store } from "../../src/lockd/store.js";
import type { RangeResponse } from "../../src/proto/index.js";

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
    const after = await store.range({ key: b("k") });
    assert.equal(after.kvs[0]?.value.toString(), "v2");
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
