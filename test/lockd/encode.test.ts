/**
 * The answers lockd writes by hand (the key-values of a large Range or DeleteRange) read back with
 * protobufjs, the library gRPC's loader decodes with, as exactly the records they were written from:
 * every int64 edge, keys and values of every byte, values from SQLite, keys only, and the header after
 * them. A value of the wrong length is refused instead of sent.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import protobuf from "protobufjs";
import { LockdStorageError } from "../../src/lockd/errors.js";
import { type GrpcFrame, PREFIX_BYTES } from "../../src/lockd/grpc-frame.js";
import type { Kv } from "../../src/lockd/kv.js";
import { encodeInSteps, STEP_KEYS, type StepLoader } from "../../src/lockd/range-result.js";
import { ETCD_PROTO_PATH } from "../../src/proto/index.js";
import { prng } from "./prng.js";

const root = new protobuf.Root().loadSync(ETCD_PROTO_PATH, { keepCase: true });
const RangeResponse = root.lookupType("etcdserverpb.RangeResponse");
const DeleteRangeResponse = root.lookupType("etcdserverpb.DeleteRangeResponse");

const INT64_EDGES = [
  0n,
  1n,
  127n,
  128n,
  16_383n,
  16_384n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n - 1n,
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 56n,
  2n ** 63n - 1n,
  -1n,
  -(2n ** 63n),
];

function bytesOf(random: () => number, length: number): string {
  let s = "";
  for (let i = 0; i < length; i++) s += String.fromCharCode(Math.floor(random() * 256));
  return s;
}

/** Records with every int64 edge in every field, keys and values of every byte; some values "in SQLite". */
function records(count: number, seed: number): { kvs: Kv[]; stored: Map<Kv, string> } {
  const random = prng(seed);
  const pick = () => INT64_EDGES[Math.floor(random() * INT64_EDGES.length)] as bigint;
  const kvs: Kv[] = [];
  const stored = new Map<Kv, string>();
  for (let i = 0; i < count; i++) {
    const size = [0, 1, 100, 127, 128, 300, 20_000][i % 7] as number;
    const value = bytesOf(random, size);
    const kv: Kv = {
      key: `${bytesOf(random, 1 + Math.floor(random() * 40))}${i}`,
      createRev: pick(),
      modRev: pick(),
      version: pick(),
      value: i % 3 === 0 ? null : value,
      size,
      lease: pick(),
    };
    if (kv.value === null) stored.set(kv, value);
    kvs.push(kv);
  }
  return { kvs, stored };
}

function loader(stored: Map<Kv, string>, asked?: Kv[]): StepLoader {
  const one = (kv: Kv) => stored.get(kv) ?? (kv.value as string);
  return {
    one,
    step: () => (kv) => {
      asked?.push(kv);
      return Buffer.from(one(kv), "latin1");
    },
  };
}

/** An int64 as protobufjs decodes it (a `Long`, or a number), as a `bigint`. */
function big(n: unknown): bigint {
  if (typeof n === "number") return BigInt(n);
  const long = n as protobuf.Long;
  return BigInt.asIntN(64, (BigInt(long.high >>> 0) << 32n) | BigInt(long.low >>> 0));
}

function decoded(type: protobuf.Type, bytes: Buffer, field: "kvs" | "prev_kvs") {
  const message = type.toObject(type.decode(bytes), { defaults: true }) as Record<string, unknown>;
  const kvs = (message[field] as Record<string, unknown>[]).map((kv) => ({
    key: Buffer.from(kv.key as Uint8Array).toString("latin1"),
    createRev: big(kv.create_revision),
    modRev: big(kv.mod_revision),
    version: big(kv.version),
    value: Buffer.from(kv.value as Uint8Array).toString("latin1"),
    lease: big(kv.lease),
  }));
  return { message, kvs };
}

function expected(kvs: Kv[], stored: Map<Kv, string>, keysOnly: boolean) {
  return kvs.map((kv) => ({
    key: kv.key,
    createRev: kv.createRev,
    modRev: kv.modRev,
    version: kv.version,
    value: keysOnly ? "" : (stored.get(kv) ?? (kv.value as string)),
    lease: kv.lease,
  }));
}

/** The message of a frame, its prefix checked: not compressed, then the message's length. */
function messageOf(frame: GrpcFrame): Buffer {
  assert.equal(frame.bytes[0], 0);
  assert.equal(frame.bytes.readUInt32BE(1), frame.bytes.length - PREFIX_BYTES);
  return frame.message;
}

describe("lockd's hand-written answers", () => {
  test("a Range answer reads back as its records and its header, over several steps", async () => {
    const { kvs, stored } = records(2 * STEP_KEYS + 37, 1);
    const tail = Buffer.from(
      RangeResponse.encode({ header: { revision: 99, member_id: 7 }, more: true, count: 123_456 }).finish(),
    );
    const asked: Kv[] = [];
    const bytes = messageOf(await encodeInSteps(kvs, false, loader(stored, asked), "kvs", tail));
    const { message, kvs: got } = decoded(RangeResponse, bytes, "kvs");
    assert.deepEqual(got, expected(kvs, stored, false));
    assert.equal(big((message.header as Record<string, unknown>).revision), 99n);
    assert.equal(big(message.count), 123_456n);
    assert.equal(message.more, true);
    // Only the values kept out of memory (and not empty) are read from the loader.
    assert.deepEqual(new Set(asked), new Set([...stored.keys()].filter((kv) => kv.size > 0)));
  });

  test("keys only: no value is written or read", async () => {
    const { kvs, stored } = records(STEP_KEYS + 5, 2);
    const asked: Kv[] = [];
    const bytes = messageOf(await encodeInSteps(kvs, true, loader(stored, asked), "kvs", Buffer.alloc(0)));
    assert.deepEqual(decoded(RangeResponse, bytes, "kvs").kvs, expected(kvs, stored, true));
    assert.equal(asked.length, 0);
  });

  test("a DeleteRange answer puts them in prev_kvs, its deleted count after them", async () => {
    const { kvs, stored } = records(700, 3);
    const tail = Buffer.from(DeleteRangeResponse.encode({ deleted: 700 }).finish());
    const bytes = messageOf(await encodeInSteps(kvs, false, loader(stored), "prev_kvs", tail));
    const { message, kvs: got } = decoded(DeleteRangeResponse, bytes, "prev_kvs");
    assert.deepEqual(got, expected(kvs, stored, false));
    assert.equal(big(message.deleted), 700n);
    assert.equal((message.kvs as unknown[] | undefined)?.length ?? 0, 0);
  });

  test("no records: the answer is the tail alone", async () => {
    const tail = Buffer.from(RangeResponse.encode({ count: 0 }).finish());
    assert.deepEqual(messageOf(await encodeInSteps([], false, loader(new Map()), "kvs", tail)), tail);
  });

  test("a value read from the database of another length than its record is refused", async () => {
    const { kvs, stored } = records(30, 4);
    const victim = [...stored.keys()].find((kv) => kv.size > 1) as Kv;
    stored.set(victim, (stored.get(victim) as string).slice(1));
    await assert.rejects(encodeInSteps(kvs, false, loader(stored), "kvs", Buffer.alloc(0)), (err) => {
      assert.ok(err instanceof LockdStorageError);
      assert.match(err.message, /bytes long, its record says/);
      return true;
    });
    // So is an in-memory value whose length disagrees with its record.
    const bad: Kv = { ...(kvs[1] as Kv), value: "abc", size: 4 };
    await assert.rejects(
      encodeInSteps([bad], false, loader(new Map()), "kvs", Buffer.alloc(0)),
      LockdStorageError,
    );
  });
});
