/**
 * What the codec tests share to compare our decoders with gRPC's loader: int64 edges, builders of random
 * field values, and the check of cut-off and corrupted bytes.
 */
import assert from "node:assert/strict";
import { prng } from "../lockd/prng.js";

/** Every int64 edge worth a case: varint lengths, 2^31, 2^32, 2^53 and its neighbours, the extremes. */
export const INT64_EDGES = [
  "0",
  "1",
  "127",
  "128",
  "2147483647",
  "2147483648",
  "4294967295",
  "4294967296",
  "9007199254740991",
  "9007199254740992",
  "9007199254740993",
  "9223372036854775807",
  "-1",
  "-4294967296",
  "-9007199254740991",
  "-9007199254740993",
  "-9223372036854775808",
];

/** Builders of random field values from `seed`; each value is left out about a third of the time. */
export function randomFields(seed: number) {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const maybe = <T>(f: () => T): T | undefined => (random() < 0.33 ? undefined : f());
  return {
    random,
    pick,
    maybe,
    int: () => maybe(() => pick(INT64_EDGES)),
    bytes: () => maybe(() => Buffer.from(Array.from({ length: Math.floor(random() * 20) }, () => 97))),
    flag: () => maybe(() => random() < 0.5),
    /** A repeated field of zero to three items. */
    list: <T>(f: () => T) => maybe(() => Array.from({ length: Math.floor(random() * 4) }, f)),
    /** Usually one member of a oneof, sometimes none, sometimes two or more. */
    members: <T extends string>(names: readonly T[]): T[] => {
      const r = random();
      if (r < 0.1) return [];
      if (r < 0.8) return [pick(names)];
      return names.filter(() => random() < 0.5);
    },
  };
}

/**
 * Cuts off and corrupts `full` (the bytes of a valid message) at random points; for each, `loader` and
 * `ours` must both throw, or both return the same. Returns how many the loader refused.
 */
export function checkBrokenBytes(
  full: Buffer,
  random: () => number,
  loader: (b: Buffer) => unknown,
  ours: (b: Buffer) => unknown,
  what: string,
): number {
  let thrown = 0;
  const broken = [full.subarray(0, Math.floor(random() * full.length)), Buffer.from(full)];
  const flip = broken[1] as Buffer;
  if (flip.length > 0) flip[Math.floor(random() * flip.length)] = Math.floor(random() * 256);
  for (const b of broken) {
    let expected: unknown;
    try {
      expected = loader(b);
    } catch (err) {
      assert.throws(() => ours(b), `${what}: the loader threw ${String(err)}`);
      thrown++;
      continue;
    }
    assert.deepStrictEqual(ours(b), expected, what);
  }
  return thrown;
}
