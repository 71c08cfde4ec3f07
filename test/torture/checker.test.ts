import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { check } from "../../src/torture/checker.js";
import { encodeValue } from "../../src/torture/history.js";
import { HistoryBuilder } from "./fixtures.js";

/** Two workers taking turns properly: lock, read, write, unlock. */
function serial(mode: "unfenced" | "write-fenced" | "fenced"): HistoryBuilder {
  const h = new HistoryBuilder(mode);
  let value: string | null = null;
  for (let i = 0; i < 4; i++) {
    const w = `w${i % 2}.1`;
    const token = BigInt(10 + i);
    h.lock(w, token);
    h.read(w, "k0", token, value);
    value = h.write(w, "k0", token, i + 1).written ?? null;
    h.unlock(w, token);
  }
  return h;
}

describe("checker on hand-made histories", () => {
  for (const mode of ["unfenced", "write-fenced", "fenced"] as const) {
    it(`passes a correct serial history (${mode})`, () => {
      const result = check(serial(mode).input());
      assert.deepEqual(result.violations, []);
      assert.equal(result.ok, true);
      assert.deepEqual(result.keys, [{ key: "k0", accepted: 4, acknowledged: 4, final: 4, lost: 0 }]);
    });
  }

  it("finds an unfenced lost update, names both writers, and gives the smallest window", () => {
    const h = new HistoryBuilder("unfenced");
    h.lock("w0.1", 10n);
    const aRead = h.read("w0.1", "k0", 10n, null);
    // w0.1 is paused here; its lease expires and w1.1 takes the lock.
    h.lock("w1.1", 11n);
    h.read("w1.1", "k0", 11n, null);
    const bWrite = h.write("w1.1", "k0", 11n, 1);
    h.unlock("w1.1", 11n);
    const aWrite = h.write("w0.1", "k0", 10n, 1);
    const result = check(h.input());
    const lost = result.violations.filter((v) => v.kind === "lost-update");
    assert.equal(lost.length, 1);
    const v = lost[0];
    assert.ok(v);
    assert.deepEqual(v.writers, [bWrite.ref, aWrite.ref]);
    assert.equal(v.lost, 1);
    assert.deepEqual(v.overwritten, [bWrite.ref]);
    assert.equal(v.window.fromMs, aRead.invokeMs);
    assert.equal(v.window.toMs, aWrite.completeMs);
    assert.deepEqual(v.window.audit, [3, 4]);
    // The older token's write landed after the newer one: effects out of turn as well.
    assert.equal(result.counts["token-regression"], 1);
    assert.deepEqual(result.keys, [{ key: "k0", accepted: 2, acknowledged: 2, final: 1, lost: 1 }]);
    assert.equal(result.ok, false);
  });

  it("counts every increment an overwrite erased", () => {
    const h = new HistoryBuilder("unfenced");
    h.lock("w0.1", 10n);
    h.read("w0.1", "k0", 10n, encodeValue(2, "w9.1:1"));
    const erased = [];
    for (let i = 0; i < 3; i++) {
      h.lock("w1.1", BigInt(11 + i));
      erased.push(h.write("w1.1", "k0", BigInt(11 + i), 1 + i).ref);
    }
    h.write("w0.1", "k0", 10n, 1);
    const lost = check(h.input()).violations.find((v) => v.kind === "lost-update");
    assert.equal(lost?.lost, 3);
    assert.deepEqual(lost?.overwritten, erased);
  });

  it("finds the write-fenced read-modify-write race as a lost update, not as a token regression", () => {
    const h = new HistoryBuilder("write-fenced");
    h.lock("w0.1", 10n);
    h.read("w0.1", "k0", 10n, null);
    h.lock("w1.1", 11n);
    h.read("w1.1", "k0", 11n, null);
    h.write("w0.1", "k0", 10n, 1);
    h.write("w1.1", "k0", 11n, 1);
    const result = check(h.input());
    assert.equal(result.counts["lost-update"], 1);
    assert.equal(result.counts["token-regression"], 0);
  });

  it("accepts a fenced history in which the stale write was refused", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.read("w0.1", "k0", 10n, null);
    h.lock("w1.1", 11n);
    h.read("w1.1", "k0", 11n, null);
    h.write("w0.1", "k0", 10n, 1, { accepted: false });
    h.write("w1.1", "k0", 11n, 1);
    assert.deepEqual(check(h.input()).violations, []);
  });

  it("finds a token regression the storage let through", () => {
    const h = new HistoryBuilder("write-fenced");
    h.lock("w0.1", 10n);
    h.lock("w1.1", 11n);
    h.write("w1.1", "k0", 11n, 1);
    h.write("w0.1", "k0", 10n, 2);
    const result = check(h.input());
    assert.equal(result.counts["token-regression"], 1);
    assert.match(result.violations[0]?.message ?? "", /token 10\).*after write #1.*token 11/);
  });

  it("finds a write accepted with a token granted to another worker", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.write("w1.1", "k0", 10n, 1);
    const result = check(h.input());
    assert.equal(result.counts["foreign-token"], 1);
    assert.match(result.violations[0]?.message ?? "", /granted to w0\.1/);
  });

  it("finds a token granted twice", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.lock("w1.1", 10n);
    assert.equal(check(h.input()).counts["duplicate-grant"], 1);
  });

  it("finds an acknowledged write the storage does not know", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.write("w0.1", "k0", 10n, 1, { audited: false });
    const result = check(h.input({ k0: null }));
    assert.equal(result.counts.durability, 1);
    assert.match(result.violations[0]?.message ?? "", /acknowledged/);
  });

  it("finds an acknowledged write lost by a storage restart", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    const first = h.write("w0.1", "k0", 10n, 1);
    const second = h.write("w0.1", "k0", 10n, 2);
    const restart = { killMs: h.time + 1, upMs: h.time + 5, values: { k0: first.written ?? null } };
    const result = check(h.input({ k0: second.written ?? null }, [restart]));
    assert.equal(result.counts.durability, 1);
    assert.equal(result.violations[0]?.window.toMs, restart.upMs);
    const kept = check(
      h.input({ k0: second.written ?? null }, [{ ...restart, values: { k0: second.written ?? null } }]),
    );
    assert.equal(kept.ok, true);
  });

  it("finds a final value that is not the last accepted write", () => {
    const h = serial("fenced");
    const result = check(h.input({ k0: encodeValue(3, "w1.1:3") }));
    assert.equal(result.counts.durability, 1);
    assert.equal(result.keys[0]?.final, 3);
  });

  it("finds a stale fenced read the storage accepted below the fence", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.lock("w1.1", 11n);
    h.write("w1.1", "k0", 11n, 1);
    h.read("w0.1", "k0", 10n, null);
    const result = check(h.input());
    const stale = result.violations.filter((v) => v.kind === "stale-read");
    assert.ok(stale.length >= 1);
    assert.match(stale[0]?.message ?? "", /token 10 after #/);
  });

  it("finds a fenced read that did not return the last accepted write", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.write("w0.1", "k0", 10n, 1);
    h.lock("w1.1", 11n);
    h.read("w1.1", "k0", 11n, null);
    const result = check(h.input());
    assert.equal(result.counts["stale-read"], 1);
    assert.match(result.violations[0]?.message ?? "", /returned null/);
  });

  it("finds a write built on a value that an overwrite had already replaced", () => {
    const h = new HistoryBuilder("unfenced");
    h.lock("w0.1", 10n);
    h.read("w0.1", "k0", 10n, null);
    h.lock("w1.1", 11n);
    h.write("w1.1", "k0", 11n, 1);
    h.lock("w2.1", 12n);
    h.read("w2.1", "k0", 12n, encodeValue(1, "w1.1:2"));
    h.write("w2.1", "k0", 12n, 2);
    const overwrite = h.write("w0.1", "k0", 10n, 1);
    // w3.1 read the 2 before w0.1's overwrite and writes 3 after it.
    const late = h.write("w3.1", "k0", 13n, 3);
    const result = check(h.input());
    const lost = result.violations.filter((v) => v.kind === "lost-update");
    assert.equal(lost.length, 2);
    assert.match(lost[1]?.message ?? "", /read 2 and wrote 3 after w0\.1:\d+ had stored 1/);
    assert.deepEqual(lost[1]?.writers, [overwrite.ref, late.ref]);
    assert.equal(result.counts["unexplained-value"], 0);
    assert.deepEqual(result.keys, [{ key: "k0", accepted: 4, acknowledged: 4, final: 3, lost: 1 }]);
  });

  it("reports a write built on a value that was never stored", () => {
    const h = new HistoryBuilder("fenced");
    h.lock("w0.1", 10n);
    h.write("w0.1", "k0", 10n, 5);
    assert.equal(check(h.input()).counts["unexplained-value"], 1);
  });

  it("reports a value no worker wrote", () => {
    const h = new HistoryBuilder("unfenced");
    h.rawAudit({ op: "write", key: "k0", fence: "k0", token: null, accepted: true, value: "garbage" });
    assert.equal(check(h.input({ k0: "garbage" })).counts["unexplained-value"], 1);
  });
});
