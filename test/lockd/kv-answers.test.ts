/**
 * The KV answers lockd writes by hand (Range, Put, DeleteRange, Txn) against gRPC's own encoder: the
 * same bytes wherever no field holds its default, the same message read back (protobufjs, as gRPC's
 * loader decodes) wherever one does, with defaults left out as etcd leaves them out. Every int64 edge
 * in every int64 field, nested transactions, empty and absent messages. A field that holds no integer
 * is refused instead of written.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodeKvAnswer, type KvAnswerMethod } from "../../src/lockd/kv-answers.js";
import { etcdServices } from "../../src/proto/index.js";
import type { KeyValue, ResponseHeader, ResponseOp, TxnResponse } from "../../src/proto/types.js";
import { prng } from "./prng.js";

const kv = etcdServices().KV.service;
const grpcEncode = (m: KvAnswerMethod, res: object) => kv[m]?.responseSerialize(res) as Buffer;
const decode = (m: KvAnswerMethod, bytes: Buffer) => kv[m]?.responseDeserialize(bytes);

/** Decimal int64s at every varint length change and at the ends of the type (uint64 where it may be). */
const EDGES = [
  "1",
  "127",
  "128",
  "16384",
  "2147483648",
  "4294967295",
  "4294967296",
  "999999999999999",
  "1000000000000000",
  "9007199254740991",
  "9007199254740992",
  "72057594037927936",
  "9223372036854775807",
  "-1",
  "-9223372036854775808",
];
const UNSIGNED_EDGES = [...EDGES.filter((e) => !e.startsWith("-")), "18446744073709551615"];

/** Builders of answers; `zeros` puts a default (0, false, empty) in about half the fields. */
function answers(seed: number, zeros: boolean) {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const int = () => (zeros && random() < 0.5 ? "0" : pick(EDGES));
  const uint = () => (zeros && random() < 0.5 ? "0" : pick(UNSIGNED_EDGES));
  const bytes = (max: number) => {
    const n = zeros && random() < 0.5 ? 0 : 1 + Math.floor(random() * max);
    return Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  };
  const flag = () => (zeros ? random() < 0.5 : true);
  const header = (): ResponseHeader => ({
    cluster_id: uint(),
    member_id: uint(),
    revision: int(),
    raft_term: uint(),
  });
  const keyValue = (): KeyValue => ({
    key: bytes(40),
    create_revision: int(),
    mod_revision: int(),
    version: int(),
    value: bytes(300),
    lease: int(),
  });
  const kvs = (n: number) => Array.from({ length: n }, keyValue);
  const range = () => ({
    header: header(),
    kvs: kvs(1 + Math.floor(random() * 4)),
    more: flag(),
    count: int(),
  });
  const put = () => ({ header: header(), prev_kv: keyValue() });
  const del = () => ({ header: header(), deleted: int(), prev_kvs: kvs(1 + Math.floor(random() * 3)) });
  const txn = (depth: number): TxnResponse => ({
    header: header(),
    succeeded: flag(),
    responses: Array.from({ length: 1 + Math.floor(random() * 4) }, (): ResponseOp => {
      const which = Math.floor(random() * (depth > 0 ? 4 : 3));
      if (which === 0) return { response_range: range() };
      if (which === 1) return { response_put: put() };
      if (which === 2) return { response_delete_range: del() };
      return { response_txn: txn(depth - 1) };
    }),
  });
  return { range, put, del, txn };
}

function cases(seed: number, zeros: boolean): [KvAnswerMethod, object][] {
  const a = answers(seed, zeros);
  return [
    ["Range", a.range()],
    ["Put", a.put()],
    ["DeleteRange", a.del()],
    ["Txn", a.txn(3)],
  ];
}

describe("KV answers written by hand", () => {
  test("the same bytes as gRPC's encoder when no field holds its default", () => {
    for (let seed = 1; seed <= 200; seed++) {
      for (const [method, res] of cases(seed, false)) {
        assert.deepEqual(encodeKvAnswer(method, res), grpcEncode(method, res), `${method}, seed ${seed}`);
      }
    }
  });

  test("the same message read back when fields hold defaults, and those fields left out", () => {
    let shorter = 0;
    for (let seed = 1; seed <= 200; seed++) {
      for (const [method, res] of cases(seed, true)) {
        const ours = encodeKvAnswer(method, res);
        const theirs = grpcEncode(method, res);
        assert.deepEqual(decode(method, ours), decode(method, theirs), `${method}, seed ${seed}`);
        assert.ok(ours.length <= theirs.length, `${method}, seed ${seed}: ${ours.length} > ${theirs.length}`);
        if (ours.length < theirs.length) shorter++;
      }
    }
    assert.ok(shorter > 700, `only ${shorter} of 800 answers left a default out`);
  });

  test("a header of a revision alone is written as etcd writes it; empty and absent messages differ", () => {
    const header = { cluster_id: "0", member_id: "0", revision: "300", raft_term: "0" };
    // Field 1 (header), 3 bytes: field 3 (revision) = 300 as a varint.
    assert.deepEqual(encodeKvAnswer("Put", { header, prev_kv: null }), Buffer.from("0a0318ac02", "hex"));
    assert.deepEqual(encodeKvAnswer("Put", { header: null, prev_kv: null }), Buffer.alloc(0));
    const empty = { cluster_id: "0", member_id: "0", revision: "0", raft_term: "0" };
    assert.deepEqual(encodeKvAnswer("Put", { header: empty, prev_kv: null }), Buffer.from("0a00", "hex"));
    // An operation whose answer is empty is still one operation.
    const txn = {
      header: null,
      succeeded: false,
      responses: [{ response_put: { header: null, prev_kv: null } }],
    };
    const back = decode("Txn", encodeKvAnswer("Txn", txn)) as TxnResponse;
    assert.equal(back.responses.length, 1);
    assert.equal(back.responses[0]?.response, "response_put");
  });

  test("an int64 field that holds no integer is refused", () => {
    const bad = {
      header: { cluster_id: "1", member_id: "1", revision: "12x", raft_term: "1" },
      prev_kv: null,
    };
    assert.throws(() => encodeKvAnswer("Put", bad), SyntaxError);
  });
});
