import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeValue,
  encodeValue,
  foldHistory,
  formatEvent,
  type HistoryEvent,
  parseEvent,
} from "../../src/torture/history.js";

describe("history", () => {
  it("round-trips an event line, tokens past 2^53 exactly", () => {
    const e: HistoryEvent = { w: "w1.2", id: 3, t: "ok", at: 1.5, token: "4703569812595502727" };
    assert.deepEqual(parseEvent(formatEvent(e)), e);
    const [op] = foldHistory([{ w: "w1.2", id: 3, t: "invoke", op: "lock", at: 1 }, e]);
    assert.equal(op?.token, 4703569812595502727n);
  });

  it("ignores lines that are not events", () => {
    assert.equal(parseEvent("hello"), undefined);
    assert.equal(parseEvent("{not json"), undefined);
    assert.equal(parseEvent('{"w":"w0.1","id":1,"t":"maybe","at":1}'), undefined);
    assert.equal(parseEvent('{"event":"listening","host":"127.0.0.1","port":1}'), undefined);
  });

  it("joins invokes and completions; an invoke without completion is unknown", () => {
    const ops = foldHistory([
      { w: "w0.1", id: 1, t: "invoke", op: "read", key: "k0", token: "5", fenced: true, at: 10 },
      { w: "w0.1", id: 1, t: "ok", value: "3 w1.1:7", at: 11 },
      { w: "w0.1", id: 2, t: "invoke", op: "write", key: "k0", token: "5", value: "4 w0.1:2", at: 12 },
      { w: "w0.1", id: 3, t: "ok", at: 13 },
    ]);
    assert.equal(ops.length, 2);
    assert.deepEqual(
      ops.map((o) => [o.ref, o.kind, o.outcome, o.completeMs]),
      [
        ["w0.1:1", "read", "ok", 11],
        ["w0.1:2", "write", "unknown", null],
      ],
    );
    assert.equal(ops[0]?.read, "3 w1.1:7");
    assert.equal(ops[0]?.fenced, true);
    assert.equal(ops[1]?.written, "4 w0.1:2");
    assert.equal(ops[1]?.slot, 0);
  });

  it("maps a failure and an unknown outcome", () => {
    const ops = foldHistory([
      { w: "w2.1", id: 1, t: "invoke", op: "write", at: 1 },
      { w: "w2.1", id: 1, t: "fail", error: "STALE_FENCING_TOKEN", at: 2 },
      { w: "w2.1", id: 2, t: "invoke", op: "write", at: 3 },
      { w: "w2.1", id: 2, t: "info", error: "STORAGE_TIMEOUT", at: 4 },
    ]);
    assert.deepEqual(
      ops.map((o) => [o.outcome, o.error]),
      [
        ["fail", "STALE_FENCING_TOKEN"],
        ["unknown", "STORAGE_TIMEOUT"],
      ],
    );
  });

  it("encodes the counter and the writer in the value", () => {
    assert.deepEqual(decodeValue(encodeValue(12, "w3.4:56")), { counter: 12, ref: "w3.4:56" });
    assert.equal(decodeValue(null), null);
    assert.equal(decodeValue("12"), null);
    assert.equal(decodeValue("x w1.1:1"), null);
  });
});
