/**
 * The KV request decoders of lockd (Range, Put, DeleteRange, Txn) against gRPC's loader: for random
 * requests with every int64 edge in every int64 field, fields left out, zeros sent explicitly, unknown
 * enum values, oneofs with none, one or several members sent, and transactions nested three deep, both
 * must return the same object. On cut-off and corrupted bytes both must throw, or both return the same.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type KvRequestMethod, kvRequestDecoders } from "../../src/lockd/kv-requests.js";
import { etcdServices } from "../../src/proto/index.js";
import { checkBrokenBytes, INT64_EDGES, randomFields } from "../proto/random-messages.js";
import { prng } from "./prng.js";

const kv = etcdServices().KV.service;
const ours = kvRequestDecoders();
const encode = (m: KvRequestMethod, req: object) => kv[m]?.requestSerialize(req) as Buffer;
const loader = (m: KvRequestMethod, bytes: Buffer) => kv[m]?.requestDeserialize(bytes);

/** Builders of requests; each field is left out about a third of the time. */
function requests(seed: number) {
  const { random, pick, maybe, int, bytes, flag, list, members } = randomFields(seed);
  const enumOf = (max: number) =>
    maybe(() => (random() < 0.1 ? pick([max + 1, 99, -1]) : Math.floor(random() * (max + 1))));
  const range = () => ({
    key: bytes(),
    range_end: bytes(),
    limit: int(),
    revision: int(),
    sort_order: enumOf(2),
    sort_target: enumOf(4),
    serializable: flag(),
    keys_only: flag(),
    count_only: flag(),
    min_mod_revision: int(),
    max_mod_revision: int(),
    min_create_revision: int(),
    max_create_revision: int(),
  });
  const put = () => ({
    key: bytes(),
    value: bytes(),
    lease: int(),
    prev_kv: flag(),
    ignore_value: flag(),
    ignore_lease: flag(),
  });
  const del = () => ({ key: bytes(), range_end: bytes(), prev_kv: flag() });
  const compare = () => {
    const c: Record<string, unknown> = {
      result: enumOf(3),
      target: enumOf(4),
      key: bytes(),
      range_end: bytes(),
    };
    for (const m of members(["version", "create_revision", "mod_revision", "value", "lease"] as const))
      c[m] = m === "value" ? Buffer.from("v") : pick(INT64_EDGES);
    return c;
  };
  const op = (depth: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    const names = ["request_range", "request_put", "request_delete_range", "request_txn"] as const;
    for (const m of members(depth < 3 ? names : names.slice(0, 3))) {
      if (m === "request_range") o[m] = range();
      else if (m === "request_put") o[m] = put();
      else if (m === "request_delete_range") o[m] = del();
      else o[m] = txn(depth + 1);
    }
    return o;
  };
  const txn = (depth: number) => ({
    compare: list(compare),
    success: list(() => op(depth)),
    failure: list(() => op(depth)),
  });
  return { Range: range, Put: put, DeleteRange: del, Txn: () => txn(0) } satisfies Record<
    KvRequestMethod,
    unknown
  >;
}

const METHODS: KvRequestMethod[] = ["Range", "Put", "DeleteRange", "Txn"];

describe("lockd's KV request decoders", () => {
  test("decode 800 random requests as gRPC's loader does, every int64 edge, oneofs with several members", () => {
    let severalMembers = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const make = requests(seed);
      for (const m of METHODS) {
        const bytes = encode(m, make[m]());
        const expected = loader(m, bytes);
        assert.deepStrictEqual(ours[m](bytes), expected, `${m}, seed ${seed}`);
        if (m === "Txn") {
          const ops = [...((expected as { success: object[] }).success ?? [])];
          severalMembers += ops.filter((o) => Object.keys(o).length > 2).length;
        }
      }
    }
    // The case where the loader names the last member sent must have been met, not only assumed.
    assert.ok(severalMembers > 10, `only ${severalMembers} operations sent several members`);
  });

  test("an int64 comes out exact past 2^53, and defaults are the loader's values", () => {
    const bytes = encode("Range", {
      key: Buffer.from("k"),
      revision: "9007199254740993",
      limit: "-9223372036854775808",
    });
    const r = ours.Range(bytes) as Record<string, unknown>;
    assert.equal(r.revision, "9007199254740993");
    assert.equal(r.limit, "-9223372036854775808");
    assert.equal(r.min_mod_revision, "0");
    assert.deepEqual(r.range_end, Buffer.alloc(0));
    assert.equal(r.sort_order, 0);
    assert.equal(r.count_only, false);
    assert.deepStrictEqual(r, loader("Range", bytes));
  });

  test("cut-off and corrupted bytes: both throw, or both decode the same", () => {
    const random = prng(7);
    let thrown = 0;
    for (let seed = 1; seed <= 50; seed++) {
      const make = requests(seed);
      for (const m of METHODS) {
        const full = encode(m, make[m]());
        thrown += checkBrokenBytes(full, random, (b) => loader(m, b), ours[m], `${m}, seed ${seed}`);
      }
    }
    assert.ok(thrown > 20, `only ${thrown} of the broken messages were refused`);
  });
});
