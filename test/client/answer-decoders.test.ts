/**
 * The client's answer decoders against gRPC's loader: for random answers of every method they cover,
 * with every int64 edge in every int64 field (uint64 ones past 2^63 too), fields left out, zeros sent
 * explicitly, unknown enum values, oneofs with none, one or several members sent, and transactions
 * nested three deep, both must return the same object. On cut-off and corrupted bytes both must throw,
 * or both return the same.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { answerDecoders } from "../../src/client/answer-decoders.js";
import { etcdServices } from "../../src/proto/index.js";
import { prng } from "../lockd/prng.js";
import { checkBrokenBytes, INT64_EDGES, randomFields } from "../proto/random-messages.js";

const decoders = answerDecoders();
const definition = (method: string) => {
  const [service, name] = method.split(".") as [keyof ReturnType<typeof etcdServices>, string];
  const d = etcdServices()[service].service[name];
  assert.ok(d, method);
  return d;
};
const encode = (method: string, answer: object) => definition(method).responseSerialize(answer) as Buffer;
const loader = (method: string, bytes: Buffer) => definition(method).responseDeserialize(bytes);
const ours = (method: string, bytes: Buffer) => (decoders.get(method) as (b: Buffer) => object)(bytes);

/** Values only a uint64 holds. */
const UNSIGNED_EDGES = ["9223372036854775808", "14841639068965178418", "18446744073709551615"];

/** Builders of answers; each field is left out about a third of the time. */
function answers(seed: number) {
  const { random, pick, maybe, int, bytes, flag, list, members } = randomFields(seed);
  const uint = () =>
    maybe(() => (random() < 0.3 ? pick(UNSIGNED_EDGES) : pick(INT64_EDGES.filter((e) => e[0] !== "-"))));
  const text = () => maybe(() => pick(["", "etcdserver: requested lease not found", "ünï", "x".repeat(50)]));
  const header = () =>
    maybe(() => ({ cluster_id: uint(), member_id: uint(), revision: int(), raft_term: uint() }));
  const kv = () => ({
    key: bytes(),
    create_revision: int(),
    mod_revision: int(),
    version: int(),
    value: bytes(),
    lease: int(),
  });
  const range = () => ({ header: header(), kvs: list(kv), more: flag(), count: int() });
  const put = () => ({ header: header(), prev_kv: maybe(kv) });
  const del = () => ({ header: header(), deleted: int(), prev_kvs: list(kv) });
  const op = (depth: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    const names = ["response_range", "response_put", "response_delete_range", "response_txn"] as const;
    for (const m of members(depth < 3 ? names : names.slice(0, 3))) {
      if (m === "response_range") o[m] = range();
      else if (m === "response_put") o[m] = put();
      else if (m === "response_delete_range") o[m] = del();
      else o[m] = txn(depth + 1);
    }
    return o;
  };
  const txn = (depth: number) => ({ header: header(), succeeded: flag(), responses: list(() => op(depth)) });
  const eventType = () => maybe(() => (random() < 0.1 ? pick([2, 99, -1]) : Math.floor(random() * 2)));
  const event = () => ({ type: eventType(), kv: maybe(kv), prev_kv: maybe(kv) });
  return {
    "KV.Range": range,
    "KV.Put": put,
    "KV.DeleteRange": del,
    "KV.Txn": () => txn(0),
    "Lease.LeaseGrant": () => ({ header: header(), ID: int(), TTL: int(), error: text() }),
    "Lease.LeaseRevoke": () => ({ header: header() }),
    "Lease.LeaseKeepAlive": () => ({ header: header(), ID: int(), TTL: int() }),
    "Watch.Watch": () => ({
      header: header(),
      watch_id: int(),
      created: flag(),
      canceled: flag(),
      compact_revision: int(),
      cancel_reason: text(),
      fragment: flag(),
      events: list(event),
    }),
  } as Record<string, () => object>;
}

const METHODS = [...decoders.keys()];

describe("the client's answer decoders", () => {
  test("cover the answers a lock, a lease and a watch read", () => {
    assert.deepEqual(METHODS.sort(), [
      "KV.DeleteRange",
      "KV.Put",
      "KV.Range",
      "KV.Txn",
      "Lease.LeaseGrant",
      "Lease.LeaseKeepAlive",
      "Lease.LeaseRevoke",
      "Watch.Watch",
    ]);
  });

  test("decode 1,600 random answers as gRPC's loader does, every int64 edge, oneofs with several members", () => {
    let severalMembers = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const make = answers(seed);
      for (const m of METHODS) {
        const bytes = encode(m, (make[m] as () => object)());
        const expected = loader(m, bytes);
        assert.deepStrictEqual(ours(m, bytes), expected, `${m}, seed ${seed}`);
        if (m === "KV.Txn") {
          const ops = (expected as { responses: object[] }).responses;
          severalMembers += ops.filter((o) => Object.keys(o).length > 2).length;
        }
      }
    }
    // The case where the loader names the last member sent must have been met, not only assumed.
    assert.ok(severalMembers > 10, `only ${severalMembers} operations sent several members`);
  });

  test("IDs past 2^63 and 2^53 come out exact, and defaults are the loader's values", () => {
    const bytes = encode("Lease.LeaseGrant", {
      header: { cluster_id: "14841639068965178418", member_id: "18446744073709551615", revision: "-1" },
      ID: "9007199254740993",
    });
    const r = ours("Lease.LeaseGrant", bytes) as Record<string, Record<string, unknown>>;
    assert.equal(r.header?.cluster_id, "14841639068965178418");
    assert.equal(r.header?.member_id, "18446744073709551615");
    assert.equal(r.header?.revision, "-1");
    assert.equal(r.header?.raft_term, "0");
    assert.equal(r.ID, "9007199254740993");
    assert.equal(r.error, "");
    assert.deepStrictEqual(r, loader("Lease.LeaseGrant", bytes));
    const empty = ours("KV.Range", Buffer.alloc(0)) as Record<string, unknown>;
    assert.deepStrictEqual(empty, { header: null, kvs: [], more: false, count: "0" });
  });

  test("cut-off and corrupted bytes: both throw, or both decode the same", () => {
    const random = prng(7);
    let thrown = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const make = answers(seed);
      for (const m of METHODS) {
        const full = encode(m, (make[m] as () => object)());
        thrown += checkBrokenBytes(
          full,
          random,
          (b) => loader(m, b),
          (b) => ours(m, b),
          `${m}, seed ${seed}`,
        );
      }
    }
    assert.ok(thrown > 20, `only ${thrown} of the broken messages were refused`);
  });
});
