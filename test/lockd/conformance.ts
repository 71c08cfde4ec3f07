/**
 * The etcd v3 conformance suite: the same tests run against a real etcd (test/lockd/etcd-conformance)
 * and against lockd (test/lockd/lockd-conformance). Every expectation is an exact answer, relative only
 * to the revision the test starts from, so where lockd answers differently from etcd one run fails.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { status } from "@grpc/grpc-js";
import type {
  DeleteRangeResponse,
  KeyValue,
  LeaseGrantResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveResponse,
  MemberListResponse,
  PutResponse,
  RangeResponse,
  StatusResponse,
  TxnResponse,
  WatchResponse,
} from "../../src/proto/index.js";
import { Raw, rpcError, wireCall } from "./raw.js";

/** A server under test. */
export interface Backend {
  endpoints: string[];
  stop(): Promise<void>;
}

const b = (s: string) => Buffer.from(s);
const big = (s: string | undefined | null) => BigInt(s ?? "0");

function keys(kvs: KeyValue[]): string[] {
  return kvs.map((kv) => kv.key.toString());
}

/** Registers the suite for `backend`, started once by `start`. */
export function conformanceSuite(backend: string, start: () => Promise<Backend>): void {
  describe(`etcd v3 conformance: ${backend}`, { timeout: 60_000 }, () => {
    let server: Backend | undefined;
    let raw: Raw;
    let n = 0;
    /** A fresh key prefix per test, so tests do not see each other's keys. */
    const prefix = () => `/conf/${process.pid}/${n++}/`;

    const put = (key: string, value: string, more: object = {}) =>
      raw.call<PutResponse>("KV", "Put", { key: b(key), value: b(value), ...more });
    const range = (req: object) => raw.call<RangeResponse>("KV", "Range", req);
    const del = (req: object) => raw.call<DeleteRangeResponse>("KV", "DeleteRange", req);
    const txn = (req: object) => raw.call<TxnResponse>("KV", "Txn", req);
    const grant = (ttl: number, id = "0") =>
      raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", { TTL: `${ttl}`, ID: id });
    const current = async () => big((await range({ key: b("/conf-nothing") })).header?.revision);

    before(async () => {
      server = await start();
      raw = new Raw(server.endpoints[0] as string);
    });
    after(async () => {
      raw?.close();
      await server?.stop();
    });

    test("put and get: revisions, versions, header", async () => {
      const p = prefix();
      const r0 = await current();
      const p1 = await put(`${p}a`, "1");
      assert.equal(big(p1.header?.revision), r0 + 1n);
      assert.equal(p1.prev_kv, null);
      assert.notEqual(big(p1.header?.cluster_id), 0n);
      assert.notEqual(big(p1.header?.member_id), 0n);
      assert.notEqual(big(p1.header?.raft_term), 0n);
      const p2 = await put(`${p}a`, "2", { prev_kv: true });
      assert.equal(big(p2.header?.revision), r0 + 2n);
      assert.equal(p2.prev_kv?.value.toString(), "1");
      assert.equal(big(p2.prev_kv?.mod_revision), r0 + 1n);
      const g = await range({ key: b(`${p}a`) });
      assert.equal(big(g.header?.revision), r0 + 2n);
      assert.equal(g.count, "1");
      assert.equal(g.more, false);
      const kv = g.kvs[0] as KeyValue;
      assert.deepEqual(
        [
          kv.key.toString(),
          kv.value.toString(),
          big(kv.create_revision),
          big(kv.mod_revision),
          kv.version,
          kv.lease,
        ],
        [`${p}a`, "2", r0 + 1n, r0 + 2n, "2", "0"],
      );
      const missing = await range({ key: b(`${p}zz`) });
      assert.deepEqual([missing.kvs.length, missing.count, missing.more], [0, "0", false]);
    });

    test("range: prefix, from-key, empty and inverted ranges, limit, count", async () => {
      const p = prefix();
      for (const k of ["b", "a", "c", "d/1", "d/2"]) await put(`${p}${k}`, k);
      const all = await range({ key: b(p), range_end: b(`${p.slice(0, -1)}0`) });
      assert.deepEqual(
        keys(all.kvs),
        ["a", "b", "c", "d/1", "d/2"].map((k) => p + k),
      );
      assert.equal(all.count, "5");
      const fromKey = await range({ key: b(`${p}c`), range_end: Buffer.from([0]) });
      assert.deepEqual(
        keys(fromKey.kvs).filter((k) => k.startsWith(p)),
        ["c", "d/1", "d/2"].map((k) => p + k),
      );
      const half = await range({ key: b(`${p}b`), range_end: b(`${p}d`) });
      assert.deepEqual(keys(half.kvs), [`${p}b`, `${p}c`]);
      const inverted = await range({ key: b(`${p}d`), range_end: b(`${p}a`) });
      assert.deepEqual([inverted.kvs.length, inverted.count], [0, "0"]);
      const limited = await range({ key: b(p), range_end: b(`${p.slice(0, -1)}0`), limit: "2" });
      assert.deepEqual(keys(limited.kvs), [`${p}a`, `${p}b`]);
      assert.deepEqual([limited.more, limited.count], [true, "5"]);
      const exact = await range({ key: b(p), range_end: b(`${p.slice(0, -1)}0`), limit: "5" });
      assert.equal(exact.more, false);
      const counted = await range({ key: b(p), range_end: b(`${p.slice(0, -1)}0`), count_only: true });
      assert.deepEqual([counted.kvs.length, counted.count, counted.more], [0, "5", false]);
      const keysOnly = await range({ key: b(`${p}a`), keys_only: true });
      assert.deepEqual([keysOnly.kvs[0]?.value.length, keysOnly.kvs[0]?.version], [0, "1"]);
      const err = await rpcError(range({ key: Buffer.alloc(0) }));
      assert.deepEqual(err, { code: status.INVALID_ARGUMENT, details: "etcdserver: key is not provided" });
    });

    test("range: sort orders and targets, with limit", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}a`, "z");
      await put(`${p}b`, "y");
      await put(`${p}c`, "x");
      await put(`${p}a`, "w");
      await put(`${p}a`, "v");
      await put(`${p}b`, "u");
      const end = b(`${p.slice(0, -1)}0`);
      const order = async (sort_order: number, sort_target: number, limit = "0") =>
        keys((await range({ key: b(p), range_end: end, sort_order, sort_target, limit })).kvs).map((k) =>
          k.slice(p.length),
        );
      assert.deepEqual(await order(2, 0), ["c", "b", "a"]);
      assert.deepEqual(await order(1, 0), ["a", "b", "c"]);
      assert.deepEqual(await order(0, 1), ["c", "b", "a"]);
      assert.deepEqual(await order(2, 1), ["a", "b", "c"]);
      assert.deepEqual(await order(1, 2), ["a", "b", "c"]);
      assert.deepEqual(await order(2, 3), ["b", "a", "c"]);
      assert.deepEqual(await order(0, 4), ["b", "a", "c"]);
      assert.deepEqual(await order(2, 4), ["c", "a", "b"]);
      assert.deepEqual(await order(2, 3, "1"), ["b"]);
      const last = await range({ key: b(p), range_end: end, sort_order: 2, sort_target: 2, limit: "1" });
      assert.equal(big(last.kvs[0]?.create_revision), r0 + 3n);
      assert.deepEqual([last.more, last.count], [true, "3"]);
    });

    test("range: min/max create and mod revision filters keep count", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}a`, "1");
      await put(`${p}b`, "1");
      await put(`${p}c`, "1");
      await put(`${p}a`, "2");
      const end = b(`${p.slice(0, -1)}0`);
      const f = async (req: object) => {
        const res = await range({ key: b(p), range_end: end, ...req });
        return [keys(res.kvs).map((k) => k.slice(p.length)), res.count, res.more];
      };
      assert.deepEqual(await f({ min_mod_revision: `${r0 + 3n}` }), [["a", "c"], "3", false]);
      assert.deepEqual(await f({ max_mod_revision: `${r0 + 2n}` }), [["b"], "3", false]);
      assert.deepEqual(await f({ min_create_revision: `${r0 + 2n}` }), [["b", "c"], "3", false]);
      assert.deepEqual(await f({ max_create_revision: `${r0 + 2n}` }), [["a", "b"], "3", false]);
      assert.deepEqual(await f({ max_create_revision: `${r0 + 2n}`, limit: "1" }), [["a"], "3", true]);
    });

    test("range at a past revision, and a future revision", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}a`, "1");
      await put(`${p}a`, "2");
      await put(`${p}b`, "1");
      await del({ key: b(`${p}a`) });
      const end = b(`${p.slice(0, -1)}0`);
      const at = async (rev: bigint) => {
        const res = await range({ key: b(p), range_end: end, revision: `${rev}` });
        assert.equal(big(res.header?.revision), r0 + 4n);
        return res.kvs.map((kv) => `${kv.key.toString().slice(p.length)}=${kv.value}@${kv.version}`);
      };
      assert.deepEqual(await at(r0), []);
      assert.deepEqual(await at(r0 + 1n), ["a=1@1"]);
      assert.deepEqual(await at(r0 + 2n), ["a=2@2"]);
      assert.deepEqual(await at(r0 + 3n), ["a=2@2", "b=1@1"]);
      assert.deepEqual(await at(r0 + 4n), ["b=1@1"]);
      const single = await range({ key: b(`${p}a`), revision: `${r0 + 1n}` });
      assert.equal(single.kvs[0]?.value.toString(), "1");
      const err = await rpcError(range({ key: b(`${p}a`), revision: `${r0 + 100n}` }));
      assert.deepEqual(err, {
        code: status.OUT_OF_RANGE,
        details: "etcdserver: mvcc: required revision is a future revision",
      });
    });

    test("put: errors and ignore_value / ignore_lease", async () => {
      const p = prefix();
      const e = async (req: object) => rpcError(raw.call("KV", "Put", req));
      assert.deepEqual(await e({ key: Buffer.alloc(0), value: b("x") }), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: key is not provided",
      });
      assert.deepEqual(await e({ key: b(`${p}a`), value: b("x"), ignore_value: true }), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: value is provided",
      });
      assert.deepEqual(await e({ key: b(`${p}a`), lease: "5", ignore_lease: true }), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: lease is provided",
      });
      assert.deepEqual(await e({ key: b(`${p}a`), ignore_value: true }), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: key not found",
      });
      assert.deepEqual(await e({ key: b(`${p}a`), value: b("x"), lease: "1234567" }), {
        code: status.NOT_FOUND,
        details: "etcdserver: requested lease not found",
      });
      const lease = (await grant(30)).ID;
      await put(`${p}a`, "v1", { lease });
      const r = await put(`${p}a`, "", { ignore_value: true, prev_kv: true });
      assert.equal(r.prev_kv?.value.toString(), "v1");
      const after1 = (await range({ key: b(`${p}a`) })).kvs[0] as KeyValue;
      assert.deepEqual([after1.value.toString(), after1.lease, after1.version], ["v1", "0", "2"]);
      await put(`${p}a`, "v2", { lease });
      await put(`${p}a`, "v3", { ignore_lease: true });
      const after2 = (await range({ key: b(`${p}a`) })).kvs[0] as KeyValue;
      assert.deepEqual([after2.value.toString(), after2.lease, after2.version], ["v3", lease, "4"]);
      await raw.call("Lease", "LeaseRevoke", { ID: lease });
    });

    test("delete range: count, prev_kvs, revision only when something is deleted", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}a`, "1");
      await put(`${p}b`, "2");
      await put(`${p}c`, "3");
      const none = await del({ key: b(`${p}zz`) });
      assert.deepEqual([none.deleted, big(none.header?.revision), none.prev_kvs.length], ["0", r0 + 3n, 0]);
      const two = await del({ key: b(`${p}a`), range_end: b(`${p}c`), prev_kv: true });
      assert.deepEqual([two.deleted, big(two.header?.revision)], ["2", r0 + 4n]);
      assert.deepEqual(
        two.prev_kvs.map((kv) => kv.value.toString()),
        ["1", "2"],
      );
      const rest = await del({ key: b(`${p}`), range_end: Buffer.from([0]) });
      assert.ok(big(rest.deleted) >= 1n);
      assert.equal((await range({ key: b(`${p}c`) })).count, "0");
      const recreated = await put(`${p}a`, "again");
      const kv = (await range({ key: b(`${p}a`) })).kvs[0] as KeyValue;
      assert.deepEqual([kv.version, kv.create_revision], ["1", recreated.header?.revision]);
      assert.deepEqual(await rpcError(del({ key: Buffer.alloc(0) })), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: key is not provided",
      });
    });

    test("txn: every compare target and result", async () => {
      const p = prefix();
      const lease = (await grant(30)).ID;
      const r0 = await current();
      await put(`${p}k`, "m", { lease });
      await put(`${p}k`, "m");
      await put(`${p}k`, "m", { lease });
      const cases: [number, string, string, boolean[]][] = [
        // target, union field, value, results for EQUAL, GREATER, LESS, NOT_EQUAL
        [0, "version", "3", [true, false, false, false]],
        [0, "version", "2", [false, true, false, true]],
        [1, "create_revision", `${r0 + 1n}`, [true, false, false, false]],
        [1, "create_revision", `${r0 + 2n}`, [false, false, true, true]],
        [2, "mod_revision", `${r0 + 3n}`, [true, false, false, false]],
        [2, "mod_revision", `${r0 + 1n}`, [false, true, false, true]],
        [4, "lease", lease, [true, false, false, false]],
        [4, "lease", "0", [false, true, false, true]],
      ];
      for (const [target, field, value, expected] of cases) {
        const got: boolean[] = [];
        for (const result of [0, 1, 2, 3]) {
          const res = await txn({ compare: [{ key: b(`${p}k`), target, result, [field]: value }] });
          got.push(res.succeeded);
        }
        assert.deepEqual(got, expected, `target ${target} ${field}=${value}`);
      }
      for (const [value, expected] of [
        ["m", [true, false, false, false]],
        ["a", [false, true, false, true]],
        ["n", [false, false, true, true]],
      ] as const) {
        const got: boolean[] = [];
        for (const result of [0, 1, 2, 3]) {
          got.push(
            (await txn({ compare: [{ key: b(`${p}k`), target: 3, result, value: b(value) }] })).succeeded,
          );
        }
        assert.deepEqual(got, expected, `value ${value}`);
      }
      // A missing key: version, create, mod and lease compare as 0; a value compare always fails.
      const missing = async (c: object) => (await txn({ compare: [{ key: b(`${p}none`), ...c }] })).succeeded;
      assert.equal(await missing({ target: 0, result: 0, version: "0" }), true);
      assert.equal(await missing({ target: 1, result: 0, create_revision: "0" }), true);
      assert.equal(await missing({ target: 2, result: 2, mod_revision: "1" }), true);
      assert.equal(await missing({ target: 4, result: 0, lease: "0" }), true);
      assert.equal(await missing({ target: 3, result: 0, value: Buffer.alloc(0) }), false);
      assert.equal(await missing({ target: 3, result: 3, value: b("x") }), false);
      await raw.call("Lease", "LeaseRevoke", { ID: lease });
    });

    test("txn: compares over a range end", async () => {
      const p = prefix();
      await put(`${p}a`, "1");
      await put(`${p}b`, "1");
      await put(`${p}b`, "2");
      const end = b(`${p}c`);
      const ok = async (c: object) =>
        (await txn({ compare: [{ key: b(`${p}a`), range_end: end, ...c }] })).succeeded;
      assert.equal(await ok({ target: 0, result: 1, version: "0" }), true);
      assert.equal(await ok({ target: 0, result: 0, version: "1" }), false);
      assert.equal(await ok({ target: 0, result: 2, version: "3" }), true);
      assert.equal(await ok({ target: 3, result: 0, value: b("1") }), false);
      assert.equal(await ok({ target: 3, result: 1, value: b("0") }), true);
      const fromKey = await txn({
        compare: [
          { key: b(`${p}b`), range_end: Buffer.from([0]), target: 1, result: 1, create_revision: "0" },
        ],
      });
      assert.equal(fromKey.succeeded, true);
      const empty = await txn({
        compare: [{ key: b(`${p}x`), range_end: b(`${p}y`), target: 0, result: 0, version: "0" }],
      });
      assert.equal(empty.succeeded, true);
    });

    test("txn: branches, responses and their headers, one revision", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}z`, "z");
      await put(`${p}x`, "old");
      const res = await txn({
        compare: [{ key: b(`${p}x`), target: 3, result: 0, value: b("old") }],
        success: [
          { request_put: { key: b(`${p}x`), value: b("new"), prev_kv: true } },
          { request_put: { key: b(`${p}y`), value: b("y") } },
          { request_range: { key: b(`${p}x`) } },
          { request_delete_range: { key: b(`${p}nothing`) } },
          { request_delete_range: { key: b(`${p}z`), prev_kv: true } },
        ],
        failure: [{ request_put: { key: b(`${p}fail`), value: b("1") } }],
      });
      assert.equal(res.succeeded, true);
      assert.equal(big(res.header?.revision), r0 + 3n);
      const [rPut, rPut2, rRange, rDel0, rDel] = res.responses;
      assert.equal(rPut?.response_put?.prev_kv?.value.toString(), "old");
      assert.equal(big(rPut?.response_put?.header?.revision), r0 + 3n);
      assert.equal(big(rPut2?.response_put?.header?.revision), r0 + 3n);
      const seen = rRange?.response_range?.kvs[0] as KeyValue;
      assert.deepEqual([seen.value.toString(), big(seen.mod_revision), seen.version], ["new", r0 + 3n, "2"]);
      assert.equal(big(rRange?.response_range?.header?.revision), r0 + 3n);
      assert.deepEqual(
        [rDel0?.response_delete_range?.deleted, big(rDel0?.response_delete_range?.header?.revision)],
        ["0", r0 + 3n],
      );
      assert.equal(rDel?.response_delete_range?.deleted, "1");
      assert.equal(rDel?.response_delete_range?.prev_kvs[0]?.value.toString(), "z");
      assert.equal(big(rPut?.response_put?.header?.member_id), 0n);
      assert.equal((await range({ key: b(`${p}z`) })).count, "0");
      assert.equal((await range({ key: b(`${p}y`) })).count, "1");
      const failed = await txn({
        compare: [{ key: b(`${p}x`), target: 3, result: 0, value: b("old") }],
        success: [{ request_put: { key: b(`${p}never`), value: b("1") } }],
        failure: [{ request_range: { key: b(`${p}x`) } }],
      });
      assert.equal(failed.succeeded, false);
      assert.equal(big(failed.header?.revision), r0 + 3n);
      assert.equal(failed.responses[0]?.response_range?.kvs[0]?.value.toString(), "new");
      assert.equal(big(failed.responses[0]?.response_range?.header?.revision), r0 + 3n);
      const readOnly = await txn({
        success: [{ request_range: { key: b(`${p}x`), revision: `${r0 + 2n}` } }],
      });
      assert.equal(readOnly.responses[0]?.response_range?.kvs[0]?.value.toString(), "old");
    });

    test("txn: nested transactions", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}a`, "1");
      const res = await txn({
        compare: [{ key: b(`${p}a`), target: 0, result: 0, version: "1" }],
        success: [
          { request_put: { key: b(`${p}b`), value: b("outer") } },
          {
            request_txn: {
              compare: [{ key: b(`${p}b`), target: 0, result: 0, version: "0" }],
              success: [{ request_put: { key: b(`${p}c`), value: b("inner-then") } }],
              failure: [{ request_put: { key: b(`${p}c`), value: b("inner-else") } }],
            },
          },
          { request_range: { key: b(`${p}c`) } },
        ],
      });
      assert.equal(res.succeeded, true);
      assert.equal(big(res.header?.revision), r0 + 2n);
      const nested = res.responses[1]?.response_txn as TxnResponse;
      // The nested compare sees the store as it was before the transaction: b did not exist.
      assert.equal(nested.succeeded, true);
      assert.equal(big(nested.responses[0]?.response_put?.header?.revision), r0 + 2n);
      assert.equal(big(nested.header?.revision), 0n);
      assert.equal(res.responses[2]?.response_range?.kvs[0]?.value.toString(), "inner-then");
    });

    test("txn: errors (duplicate keys, too many ops, bad ops)", async () => {
      const p = prefix();
      const dup = {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: duplicate key given in txn request",
      };
      const putOp = (k: string) => ({ request_put: { key: b(p + k), value: b("v") } });
      assert.deepEqual(await rpcError(txn({ success: [putOp("a"), putOp("a")] })), dup);
      assert.deepEqual(
        await rpcError(
          txn({
            success: [putOp("b"), { request_delete_range: { key: b(`${p}a`), range_end: b(`${p}c`) } }],
          }),
        ),
        dup,
      );
      assert.deepEqual(
        await rpcError(txn({ success: [putOp("a"), { request_txn: { success: [putOp("a")] } }] })),
        dup,
      );
      // Then and else of a nested transaction may put the same key; only one of them runs.
      const ok = await txn({ success: [{ request_txn: { success: [putOp("n")], failure: [putOp("n")] } }] });
      assert.equal(ok.succeeded, true);
      // A put in success and one in failure are fine; two deletes may overlap.
      await txn({
        success: [
          putOp("s"),
          { request_delete_range: { key: b(`${p}x`) } },
          { request_delete_range: { key: b(`${p}x`) } },
        ],
        failure: [putOp("s")],
      });
      const many = Array.from({ length: 129 }, (_, i) => putOp(`m${i}`));
      assert.deepEqual(await rpcError(txn({ success: many })), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: too many operations in txn request",
      });
      assert.deepEqual(
        await rpcError(txn({ success: [{ request_put: { key: Buffer.alloc(0), value: b("v") } }] })),
        {
          code: status.INVALID_ARGUMENT,
          details: "etcdserver: key is not provided",
        },
      );
      assert.deepEqual(await rpcError(txn({ compare: [{ key: Buffer.alloc(0), target: 0, result: 0 }] })), {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: key is not provided",
      });
      assert.deepEqual(
        await rpcError(
          txn({ success: [{ request_put: { key: b(`${p}q`), value: b("v"), lease: "99999" } }] }),
        ),
        { code: status.NOT_FOUND, details: "etcdserver: requested lease not found" },
      );
      assert.deepEqual(
        await rpcError(txn({ success: [{ request_put: { key: b(`${p}q`), ignore_value: true } }] })),
        { code: status.INVALID_ARGUMENT, details: "etcdserver: key not found" },
      );
      assert.equal((await range({ key: b(`${p}q`) })).count, "0");
      const r = await current();
      assert.deepEqual(
        await rpcError(txn({ success: [{ request_range: { key: b(`${p}q`), revision: `${r + 5n}` } }] })),
        {
          code: status.OUT_OF_RANGE,
          details: "etcdserver: mvcc: required revision is a future revision",
        },
      );
    });

    test("txn: nested transactions spend what their parent leaves of the 128-op budget", async () => {
      const p = prefix();
      await put(`${p}a`, "1");
      const tooMany = {
        code: status.INVALID_ARGUMENT,
        details: "etcdserver: too many operations in txn request",
      };
      const get = () => ({ request_range: { key: b(`${p}a`) } });
      const countAll = () => ({ request_range: { key: b("\0"), range_end: b("\0"), count_only: true } });
      const gets = (n: number, op = get) => Array.from({ length: n }, op);
      const nested = (ops: object[]) => ({ request_txn: { success: ops } });
      // The request: 128 nested transactions of 8 count-only full ranges leave none any room.
      const abusive = { success: Array.from({ length: 128 }, () => nested(gets(8, countAll))) };
      assert.deepEqual(await rpcError(txn(abusive)), tooMany);
      // 99 ranges and a nested transaction: 100 at the top, so the nested one may have 28.
      const fits = await txn({ success: [...gets(99), nested(gets(28))] });
      assert.equal(fits.responses[99]?.response_txn?.responses.length, 28);
      assert.deepEqual(await rpcError(txn({ success: [...gets(99), nested(gets(29))] })), tooMany);
      // Compares count too: the longest list is the transaction's size.
      const cmp = Array.from({ length: 120 }, () => ({
        key: b(`${p}a`),
        target: 0,
        result: 0,
        version: "1",
      }));
      assert.equal((await txn({ compare: cmp, success: [nested(gets(8))] })).succeeded, true);
      assert.deepEqual(await rpcError(txn({ compare: cmp, success: [nested(gets(9))] })), tooMany);
      // The else branch's nested transactions get the same budget, and a grandchild what its parent leaves.
      assert.deepEqual(
        await rpcError(txn({ success: gets(10), failure: [nested([...gets(100), nested(gets(18))])] })),
        tooMany,
      );
      const deep = await txn({ success: gets(10), failure: [nested([...gets(100), nested(gets(17))])] });
      assert.equal(deep.succeeded, true);
      // A nested transaction with no room left may still be empty.
      assert.equal((await txn({ success: [...gets(127), nested([])] })).succeeded, true);
    });

    test("thousands of keys: ranges at now and past revisions, sorted, limited; one delete with prev_kv", async () => {
      // More keys than lockd answers in one step, so its stepped reads and deletes are compared with etcd's.
      const p = prefix();
      const end = b(`${p.slice(0, -1)}0`);
      const n = 2500;
      const name = (i: number) => `${p}${String(i).padStart(5, "0")}`;
      // Half the values longer than lockd keeps in memory.
      const value = (i: number, gen: string) => `${gen}${i}`.padEnd(i % 2 === 0 ? 200 : 10, "v");
      const fill = async (gen: string) => {
        for (let i = 0; i < n; i += 125) {
          const success = Array.from({ length: Math.min(125, n - i) }, (_, j) => ({
            request_put: { key: b(name(i + j)), value: b(value(i + j, gen)) },
          }));
          await txn({ success });
        }
      };
      await fill("a");
      const rA = await current();
      await fill("b");
      await put(name(7), "changed");
      await del({ key: b(name(8)) });
      const rB = await current();
      const all = await range({ key: b(p), range_end: end });
      assert.deepEqual([all.count, all.kvs.length, all.more], [`${n - 1}`, n - 1, false]);
      assert.equal(big(all.header?.revision), rB);
      assert.deepEqual(keys(all.kvs).slice(0, 9), [0, 1, 2, 3, 4, 5, 6, 7, 9].map(name));
      assert.equal(all.kvs[0]?.value.toString(), value(0, "b"));
      assert.equal(all.kvs[7]?.value.toString(), "changed");
      assert.equal(all.kvs[n - 2]?.value.toString(), value(n - 1, "b"));
      const past = await range({ key: b(p), range_end: end, revision: `${rA}` });
      assert.deepEqual([past.count, past.kvs.length], [`${n}`, n]);
      assert.equal(big(past.header?.revision), rB);
      assert.deepEqual(
        [past.kvs[8]?.value.toString(), past.kvs[n - 1]?.value.toString()],
        [value(8, "a"), value(n - 1, "a")],
      );
      assert.equal(big(past.kvs[3]?.mod_revision) <= rA, true);
      const pastCount = await range({ key: b(p), range_end: end, revision: `${rA}`, count_only: true });
      assert.deepEqual([pastCount.count, pastCount.kvs.length], [`${n}`, 0]);
      const fromKey = await range({ key: b(name(2000)), range_end: Buffer.from([0]), keys_only: true });
      assert.deepEqual(keys(fromKey.kvs).filter((k) => k.startsWith(p)).length, 500);
      assert.equal(fromKey.kvs[0]?.value.length, 0);
      const limited = await range({ key: b(p), range_end: end, limit: "1200" });
      assert.deepEqual([limited.count, limited.kvs.length, limited.more], [`${n - 1}`, 1200, true]);
      const byValue = await range({ key: b(p), range_end: end, sort_target: 4, sort_order: 2, limit: "3" });
      assert.deepEqual(
        byValue.kvs.map((kv) => kv.value.toString()),
        all.kvs
          .map((kv) => kv.value.toString())
          .sort()
          .reverse()
          .slice(0, 3),
      );
      const newest = await range({ key: b(p), range_end: end, min_mod_revision: `${rB - 1n}` });
      assert.deepEqual([newest.count, keys(newest.kvs)], [`${n - 1}`, [name(7)]]);
      // One delete of every key: one revision, one event per key in key order, the old values returned.
      const w = raw.watch();
      w.create({ key: b(p), range_end: end, prev_kv: true });
      assert.equal((await w.next()).created, true);
      const gone = await del({ key: b(p), range_end: end, prev_kv: true });
      assert.deepEqual([gone.deleted, gone.prev_kvs.length], [`${n - 1}`, n - 1]);
      assert.equal(big(gone.header?.revision), rB + 1n);
      assert.deepEqual(
        gone.prev_kvs.map((kv) => kv.value.toString()),
        all.kvs.map((kv) => kv.value.toString()),
      );
      const events = (await w.events(n - 1, 10_000)).flatMap((r) => r.events);
      w.close();
      assert.equal(events.length, n - 1);
      assert.ok(events.every((e) => e.type === 1 && big(e.kv?.mod_revision) === rB + 1n));
      assert.deepEqual(
        events.map((e) => e.kv?.key.toString()),
        keys(all.kvs),
      );
      assert.equal(events[7]?.prev_kv?.value.toString(), "changed");
      assert.equal((await range({ key: b(p), range_end: end, count_only: true })).count, "0");
      const before = await range({ key: b(p), range_end: end, revision: `${rB}`, count_only: true });
      assert.equal(before.count, `${n - 1}`);
    });

    test("compaction: errors, reads at and below the compacted revision", async () => {
      const p = prefix();
      await put(`${p}a`, "1");
      const r1 = await current();
      await put(`${p}a`, "2");
      await put(`${p}b`, "1");
      const r3 = await current();
      const c = await raw.call<{ header: { revision: string } }>("KV", "Compact", {
        revision: `${r3 - 1n}`,
        physical: true,
      });
      assert.equal(big(c.header.revision), r3);
      const compacted = {
        code: status.OUT_OF_RANGE,
        details: "etcdserver: mvcc: required revision has been compacted",
      };
      assert.deepEqual(await rpcError(range({ key: b(`${p}a`), revision: `${r1}` })), compacted);
      assert.deepEqual(await rpcError(raw.call("KV", "Compact", { revision: `${r3 - 1n}` })), compacted);
      assert.deepEqual(await rpcError(raw.call("KV", "Compact", { revision: `${r1}` })), compacted);
      assert.deepEqual(await rpcError(raw.call("KV", "Compact", { revision: `${r3 + 10n}` })), {
        code: status.OUT_OF_RANGE,
        details: "etcdserver: mvcc: required revision is a future revision",
      });
      const atCompacted = await range({ key: b(`${p}a`), revision: `${r3 - 1n}` });
      assert.equal(atCompacted.kvs[0]?.value.toString(), "2");
      const w = raw.watch();
      w.create({ key: b(`${p}a`), start_revision: `${r1}` });
      const created = await w.next();
      assert.deepEqual([created.created, created.canceled], [true, false]);
      const cancel = await w.next();
      assert.deepEqual(
        [cancel.canceled, big(cancel.compact_revision), cancel.watch_id, cancel.events.length],
        [true, r3 - 1n, created.watch_id, 0],
      );
      w.create({ key: b(`${p}a`), range_end: b(`${p}c`), start_revision: `${r3 - 1n}` });
      const ok = await w.next();
      assert.deepEqual([ok.created, ok.canceled], [true, false]);
      const evs = await w.events(2);
      assert.deepEqual(
        evs.flatMap((res) => res.events.map((e) => `${e.kv?.key.toString().slice(p.length)}=${e.kv?.value}`)),
        ["a=2", "b=1"],
      );
      w.close();
    });

    test("leases: grant, ids, errors, time to live, keep-alive, list, revoke", async () => {
      const p = prefix();
      const g = await grant(60);
      assert.deepEqual([g.TTL, g.error], ["60", ""]);
      assert.notEqual(big(g.ID), 0n);
      const id = `${(big(g.ID) % 1_000_000_000n) + 7_000_000_000n}`;
      const own = await grant(30, id);
      assert.equal(own.ID, id);
      assert.deepEqual(await rpcError(grant(30, id)), {
        code: status.FAILED_PRECONDITION,
        details: "etcdserver: lease already exists",
      });
      assert.deepEqual(await rpcError(grant(9_000_000_001)), {
        code: status.OUT_OF_RANGE,
        details: "etcdserver: too large lease TTL",
      });
      await put(`${p}b`, "1", { lease: id });
      await put(`${p}a`, "1", { lease: id });
      const ttl = await raw.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", { ID: id, keys: true });
      assert.deepEqual(
        [ttl.ID, ttl.grantedTTL, ttl.keys.map((k) => k.toString()).sort()],
        [id, "30", [`${p}a`, `${p}b`]],
      );
      assert.ok(big(ttl.TTL) >= 28n && big(ttl.TTL) <= 30n, `TTL ${ttl.TTL}`);
      const noKeys = await raw.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", { ID: id });
      assert.equal(noKeys.keys.length, 0);
      const ka = await raw.keepAliveOnce(id);
      assert.deepEqual([ka.ID, ka.TTL], [id, "30"]);
      const list = await raw.call<LeaseLeasesResponse>("Lease", "LeaseLeases", {});
      assert.ok(list.leases.some((l) => l.ID === id) && list.leases.some((l) => l.ID === g.ID));
      const w = raw.watch();
      w.create({ key: b(p), range_end: b(`${p.slice(0, -1)}0`) });
      await w.next();
      const r0 = await current();
      const rev = await raw.call<{ header: { revision: string } }>("Lease", "LeaseRevoke", { ID: id });
      assert.equal(big(rev.header.revision), r0 + 1n);
      const [evs] = await w.events(2);
      assert.deepEqual(
        evs?.events.map((e) => [e.type, e.kv?.key.toString(), big(e.kv?.mod_revision)]),
        [
          [1, `${p}a`, r0 + 1n],
          [1, `${p}b`, r0 + 1n],
        ],
      );
      w.close();
      assert.equal((await range({ key: b(`${p}a`) })).count, "0");
      assert.deepEqual(await rpcError(raw.call("Lease", "LeaseRevoke", { ID: id })), {
        code: status.NOT_FOUND,
        details: "etcdserver: requested lease not found",
      });
      const gone = await raw.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", {
        ID: id,
        keys: true,
      });
      assert.deepEqual([gone.ID, gone.TTL, gone.keys.length], [id, "-1", 0]);
      const kaGone = await raw.keepAliveOnce(id);
      assert.deepEqual([kaGone.ID, kaGone.TTL], [id, "0"]);
      await raw.call("Lease", "LeaseRevoke", { ID: g.ID });
    });

    test("lease expiry deletes the lease's keys in one revision, with delete events", async () => {
      const p = prefix();
      const g = await grant(1);
      assert.equal(g.TTL, "1");
      await put(`${p}a`, "1", { lease: g.ID });
      await put(`${p}b`, "1", { lease: g.ID });
      await put(`${p}c`, "1");
      const w = raw.watch();
      w.create({ key: b(p), range_end: b(`${p.slice(0, -1)}0`), prev_kv: true });
      await w.next();
      const r0 = await current();
      const [res] = await w.events(2, 10_000);
      assert.deepEqual(
        res?.events.map((e) => [
          e.type,
          e.kv?.key.toString(),
          big(e.kv?.mod_revision),
          e.prev_kv?.value.toString(),
        ]),
        [
          [1, `${p}a`, r0 + 1n, "1"],
          [1, `${p}b`, r0 + 1n, "1"],
        ],
      );
      w.close();
      const left = await range({ key: b(p), range_end: b(`${p.slice(0, -1)}0`) });
      assert.deepEqual(keys(left.kvs), [`${p}c`]);
      const gone = await raw.call<LeaseTimeToLiveResponse>("Lease", "LeaseTimeToLive", { ID: g.ID });
      assert.equal(gone.TTL, "-1");
    });

    test("watch: history, prefix, prev_kv, filters, ids, cancel, progress", async () => {
      const p = prefix();
      const r0 = await current();
      await put(`${p}a`, "1");
      await put(`${p}b`, "1");
      await put(`${p}a`, "2");
      await del({ key: b(`${p}b`) });
      await put(`${p}zz`, "out of range");
      const w = raw.watch();
      w.create({ key: b(`${p}a`), range_end: b(`${p}c`), start_revision: `${r0 + 1n}`, prev_kv: true });
      const c0 = await w.next();
      assert.deepEqual([c0.created, c0.watch_id, big(c0.header?.revision)], [true, "0", r0 + 5n]);
      const hist = (await w.events(4)).flatMap((r) => r.events);
      assert.deepEqual(
        hist.map((e) => [
          e.type,
          e.kv?.key.toString().slice(p.length),
          e.kv?.value.toString(),
          big(e.kv?.mod_revision),
        ]),
        [
          [0, "a", "1", r0 + 1n],
          [0, "b", "1", r0 + 2n],
          [0, "a", "2", r0 + 3n],
          [1, "b", "", r0 + 4n],
        ],
      );
      assert.deepEqual(
        hist.map((e) => e.prev_kv?.value.toString() ?? null),
        [null, null, "1", "1"],
      );
      const del4 = hist[3] as WatchResponse["events"][number];
      assert.deepEqual([del4.kv?.version, del4.kv?.create_revision], ["0", "0"]);
      w.create({ key: b(`${p}a`), filters: [0] });
      const c1 = await w.next();
      assert.equal(c1.watch_id, "1");
      w.create({ key: b(`${p}a`), filters: [1] });
      const c2 = await w.next();
      assert.equal(c2.watch_id, "2");
      await put(`${p}a`, "3");
      await del({ key: b(`${p}a`) });
      const live: string[] = [];
      for (const res of await w.events(4)) {
        for (const e of res.events) live.push(`${res.watch_id}:${e.type}:${big(e.kv?.mod_revision) - r0}`);
      }
      assert.deepEqual(live.sort(), ["0:0:6", "0:1:7", "1:1:7", "2:0:6"]);
      w.cancel("0");
      const canceled = await w.next();
      assert.deepEqual([canceled.watch_id, canceled.canceled], ["0", true]);
      w.progress();
      const progress = await w.next();
      assert.deepEqual(
        [progress.watch_id, progress.events.length, big(progress.header?.revision)],
        ["-1", 0, r0 + 7n],
      );
      w.create({ key: b(`${p}q`), watch_id: "2" });
      const dup = await w.next();
      assert.deepEqual([dup.created, dup.canceled], [true, true]);
      w.create({ key: b(`${p}q`), watch_id: "42" });
      const own = await w.next();
      assert.deepEqual([own.created, own.canceled, own.watch_id], [true, false, "42"]);
      w.create({ key: b(`${p}q`) });
      assert.equal((await w.next()).watch_id, "3");
      w.close();
    });

    test("watch: start revision 0 sees only later changes; one response per revision", async () => {
      const p = prefix();
      await put(`${p}a`, "old");
      const w = raw.watch();
      w.create({ key: b(p), range_end: Buffer.from([0]) });
      await w.next();
      assert.equal(await w.quiet(300), true);
      const t = await txn({
        success: [
          { request_put: { key: b(`${p}a`), value: b("1") } },
          { request_put: { key: b(`${p}b`), value: b("1") } },
        ],
      });
      const [res] = await w.events(2);
      assert.deepEqual(
        [
          res?.events.length,
          res?.header?.revision,
          res?.events.map((e) => e.kv?.key.toString().slice(p.length)),
        ],
        [2, t.header?.revision, ["a", "b"]],
      );
      w.close();
    });

    test("long values: get, compare, sort, ignore_value, prev_kv, watch, history", async () => {
      const p = prefix();
      const long = (c: string) => c.repeat(1000);
      const r0 = await current();
      await put(`${p}a`, long("b"));
      await put(`${p}b`, long("a"));
      await put(`${p}a`, long("c"), { prev_kv: true });
      const w = raw.watch();
      w.create({
        key: b(p),
        range_end: b(`${p.slice(0, -1)}0`),
        start_revision: `${r0 + 1n}`,
        prev_kv: true,
      });
      await w.next();
      const evs = (await w.events(3)).flatMap((r) => r.events);
      assert.deepEqual(
        evs.map((e) => [e.kv?.value.toString(), e.prev_kv?.value.toString() ?? null]),
        [
          [long("b"), null],
          [long("a"), null],
          [long("c"), long("b")],
        ],
      );
      const end = b(`${p.slice(0, -1)}0`);
      const sorted = await range({ key: b(p), range_end: end, sort_target: 4, sort_order: 2 });
      assert.deepEqual(
        sorted.kvs.map((kv) => kv.value.toString()),
        [long("c"), long("a")],
      );
      const cmp = async (value: string, result: number) =>
        (await txn({ compare: [{ key: b(`${p}a`), target: 3, result, value: b(value) }] })).succeeded;
      assert.deepEqual(
        [await cmp(long("c"), 0), await cmp(long("b"), 1), await cmp(long("d"), 2)],
        [true, true, true],
      );
      const kept = await put(`${p}a`, "", { ignore_value: true, prev_kv: true });
      assert.equal(kept.prev_kv?.value.toString(), long("c"));
      const now = (await range({ key: b(`${p}a`) })).kvs[0] as KeyValue;
      assert.deepEqual([now.value.toString(), now.version], [long("c"), "3"]);
      const past = await range({ key: b(`${p}a`), revision: `${r0 + 1n}` });
      assert.equal(past.kvs[0]?.value.toString(), long("b"));
      await put(`${p}b`, "short", { prev_kv: true });
      const gone = await del({ key: b(`${p}a`), prev_kv: true });
      assert.equal(gone.prev_kvs[0]?.value.toString(), long("c"));
      const tail = (await w.events(3)).flatMap((r) => r.events);
      assert.deepEqual(
        tail.map((e) => [e.type, e.kv?.value.toString().length, e.prev_kv?.value.toString().length]),
        [
          [0, 1000, 1000],
          [0, 5, 1000],
          [1, 0, 1000],
        ],
      );
      w.close();
    });

    test("cluster member list and maintenance status", async () => {
      const members = await raw.call<MemberListResponse>("Cluster", "MemberList", {});
      assert.equal(members.members.length, 1);
      const m = members.members[0];
      assert.equal(m?.ID, members.header?.member_id);
      assert.ok(m?.clientURLs.some((u) => u.endsWith(`:${(server as Backend).endpoints[0]?.split(":")[1]}`)));
      const st = await raw.call<StatusResponse>("Maintenance", "Status", {});
      assert.equal(st.leader, st.header?.member_id);
      assert.match(st.version, /^3\.\d+\.\d+/);
      assert.ok(big(st.dbSize) > 0n);
      assert.equal(st.raftTerm, st.header?.raft_term);
      assert.equal(st.isLearner, false);
    });

    test("the header fields of an answer and of an error, as HTTP/2 carries them", async () => {
      const endpoint = (server as Backend).endpoints[0] as string;
      const fields = (h: object | undefined) =>
        Object.keys(h ?? {})
          .filter((k) => !k.startsWith(":"))
          .sort();
      const ok = await wireCall(endpoint, "KV", "Range", { key: b(`${prefix()}none`) });
      assert.equal(ok.headers[":status"], 200);
      assert.deepEqual(fields(ok.headers), ["content-type"]);
      assert.equal(ok.headers["content-type"], "application/grpc");
      assert.deepEqual(fields(ok.trailers), ["grpc-message", "grpc-status"]);
      assert.equal(ok.trailers?.["grpc-status"], "0");
      assert.equal(ok.trailers?.["grpc-message"], "");
      assert.equal(ok.body.readUInt8(0), 0, "the answer is not compressed");
      assert.equal(ok.body.readUInt32BE(1), ok.body.length - 5);

      // An error before any answer: one HEADERS frame, the status in it (trailers-only).
      const bad = await wireCall(endpoint, "KV", "Put", { key: Buffer.alloc(0), value: b("x") });
      assert.deepEqual(fields(bad.headers), ["content-type", "grpc-message", "grpc-status"]);
      assert.equal(bad.headers["content-type"], "application/grpc");
      assert.equal(bad.headers["grpc-status"], "3");
      assert.equal(
        decodeURIComponent(String(bad.headers["grpc-message"])),
        "etcdserver: key is not provided",
      );
      assert.equal(bad.trailers, undefined);
      assert.equal(bad.body.length, 0);
    });
  });
}
