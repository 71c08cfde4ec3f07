/**
 * The int64 conversion shared by lockd's request decoders and the client's answer decoders, against
 * `bigint` over the whole 64-bit range: edges, every power of two and its neighbours, and random bits.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodedBytes, decodedInt64, EMPTY_BYTES } from "../../src/proto/decoded.js";
import { prng } from "../lockd/prng.js";

/** What protobufjs decodes an int64 into, from a value's 64 bits. */
function long(bits: bigint, unsigned: boolean) {
  return {
    low: Number(BigInt.asIntN(32, bits)),
    high: Number(BigInt.asIntN(32, bits >> 32n)),
    unsigned,
  };
}

function check(bits: bigint): void {
  const u = BigInt.asUintN(64, bits);
  assert.equal(decodedInt64(long(u, true)), u.toString(), `unsigned ${u}`);
  const s = BigInt.asIntN(64, bits);
  assert.equal(decodedInt64(long(s, false)), s.toString(), `signed ${s}`);
}

test("every int64 comes out as bigint writes it: edges, powers of two and neighbours, random bits", () => {
  for (let p = 0n; p < 64n; p++) for (const d of [-1n, 0n, 1n]) check((1n << p) + d);
  for (const v of [0n, 10n ** 7n, 10n ** 14n, 10n ** 15n - 1n, 10n ** 18n, 10n ** 19n, -(10n ** 18n)])
    check(v);
  const random = prng(11);
  const word = () => BigInt(Math.floor(random() * 2 ** 32));
  for (let i = 0; i < 50_000; i++) {
    const v = (word() << 32n) | word();
    // Also values with short high words, around the 2^53 edge between the two ways of conversion.
    check(i % 2 === 0 ? v : v >> BigInt(Math.floor(random() * 40)));
  }
});

test("an absent bytes field is the shared empty buffer; a sent one is itself", () => {
  const sent = Buffer.from("k");
  assert.equal(decodedBytes(sent), sent);
  assert.equal(decodedBytes([]), EMPTY_BYTES);
  assert.equal(EMPTY_BYTES.length, 0);
});
