/**
 * The seed-compatible protocol (`POST /`) over real HTTP against an in-process server: body shape,
 * statuses, exact int64 round trips, and the fencing rule.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { seed, startInProcess } from "./helpers.js";

const write = (key: string, val: string, version: string) =>
  `{"op":"write","key":${JSON.stringify(key)},"val":${JSON.stringify(val)},"version":${version}}`;
const read = (key: string, version = "0") =>
  `{"op":"read","key":${JSON.stringify(key)},"version":${version}}`;

test("int64 tokens past 2^53 round-trip exactly as JSON numbers", async (t) => {
  const { port } = await startInProcess(t);
  for (const token of ["4703569812595502727", "9223372036854775807"]) {
    const w = await seed(port, write(`key-${token}`, "v", token));
    assert.equal(w.status, 200);
    assert.equal(w.text, `{"val":"v","version":${token},"err":""}`);
    const r = await seed(port, read(`key-${token}`));
    assert.equal(r.text, `{"val":"v","version":${token},"err":""}`);
  }
});

test("the rule: equal passes, newer is accepted, older is refused with 409 and the current max", async (t) => {
  const { port, logs } = await startInProcess(t);
  assert.equal((await seed(port, write("key0", "one", "100"))).status, 200);
  assert.equal((await seed(port, write("key0", "same holder", "100"))).status, 200);
  assert.equal((await seed(port, write("key0", "newer", "4703569812595502727"))).status, 200);
  const stale = await seed(port, write("key0", "old", "101"));
  assert.equal(stale.status, 409);
  assert.match(stale.text, /^\{"val":"","version":4703569812595502727,"err":"stale fencing token 101 < max/);
  assert.equal(stale.json?.code, "STALE_FENCING_TOKEN");
  const r = await seed(port, read("key0"));
  assert.equal(r.text, '{"val":"newer","version":4703569812595502727,"err":""}');
  assert.equal(logs.length, 1, "one log line per rejected write");
  assert.deepEqual(
    { event: logs[0]?.event, token: logs[0]?.token, maxToken: logs[0]?.maxToken, key: logs[0]?.key },
    { event: "rejected", token: "101", maxToken: "4703569812595502727", key: "key0" },
  );
});

test("a read of a missing key is 404 in the seed's shape", async (t) => {
  const { port } = await startInProcess(t);
  const r = await seed(port, read("nothing"));
  assert.equal(r.status, 404);
  assert.deepEqual(r.json, { val: "", version: 0, err: "key not found", code: "KEY_NOT_FOUND" });
});

test("a write without a token (version 0 or absent) is refused unless --allow-unfenced", async (t) => {
  const strict = await startInProcess(t);
  for (const body of [write("k", "v", "0"), '{"op":"write","key":"k","val":"v"}', write("k", "v", "null")]) {
    const r = await seed(strict.port, body);
    assert.equal(r.status, 400, body);
    assert.equal(r.json?.code, "TOKEN_REQUIRED");
  }
  assert.equal((await seed(strict.port, read("k"))).status, 404, "nothing was written");

  const loose = await startInProcess(t, { allowUnfenced: true });
  assert.equal((await seed(loose.port, write("k", "unfenced", "0"))).status, 200);
  assert.equal((await seed(loose.port, read("k"))).json?.val, "unfenced");
});

test("a fenced read advances the fence, so an older writer is refused afterwards", async (t) => {
  const { port } = await startInProcess(t);
  assert.equal((await seed(port, write("k", "v1", "5"))).status, 200);
  const r = await seed(port, read("k", "9"));
  assert.equal(r.text, '{"val":"v1","version":9,"err":""}');
  assert.equal((await seed(port, write("k", "late", "7"))).status, 409);
  assert.equal((await seed(port, read("k", "8"))).status, 409, "a stale fenced read is refused too");
});

test("version may be a decimal string; fence scopes several keys", async (t) => {
  const { port } = await startInProcess(t);
  const a = await seed(
    port,
    '{"op":"write","key":"a","val":"x","version":"9223372036854775807","fence":"F"}',
  );
  assert.equal(a.text, '{"val":"x","version":9223372036854775807,"err":""}');
  const b = await seed(port, '{"op":"write","key":"b","val":"y","version":5,"fence":"F"}');
  assert.equal(b.status, 409);
  assert.equal((await seed(port, '{"op":"write","key":"b","val":"y","version":5}')).status, 200);
});

test("non-ASCII keys and values are stored as UTF-8", async (t) => {
  const { port } = await startInProcess(t);
  assert.equal((await seed(port, write("clé ☃", "valeur ☃ 😀", "1"))).status, 200);
  assert.equal((await seed(port, read("clé ☃"))).json?.val, "valeur ☃ 😀");
});
