import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  attributeLockEvents,
  buildTimeline,
  byTime,
  type DemoEvent,
  eventFromJson,
  eventToJson,
  judge,
  LiveLog,
  pairWrites,
} from "../../src/demo/index.js";
import { scenarioEvents, T0 } from "./fixtures.js";

describe("demo events", () => {
  test("round-trip through a JSON line, tokens past 2^53 exactly", () => {
    const event: DemoEvent = {
      timeMs: T0,
      actor: "client 1",
      kind: "refused",
      what: "refused",
      token: 4703569812595502727n,
      maxToken: 4703569812595502728n,
      leaseId: "694d82254d5fa305",
      reason: "stale",
      pausedMs: 12,
      exitCode: 3,
      mode: "sigstop",
    };
    const line = eventToJson(event);
    assert.match(line, /"token":"4703569812595502727"/);
    assert.deepEqual(eventFromJson(line), event);
  });

  test("a write without a token keeps token null", () => {
    const line = eventToJson({ timeMs: T0, actor: "client 2", kind: "write", what: "w", token: null });
    assert.equal(eventFromJson(line)?.token, null);
  });

  test("lines that are not events are ignored", () => {
    for (const line of [
      "2026/11/26 client 1 starts",
      "{not json",
      '{"time":1,"actor":"client 3","kind":"start","what":"x"}',
      '{"time":1,"actor":"client 1","kind":"explode","what":"x"}',
      '{"time":"1","actor":"client 1","kind":"start","what":"x"}',
      '{"time":1,"actor":"client 1","kind":"start"}',
    ]) {
      assert.equal(eventFromJson(line), undefined, line);
    }
  });

  test("a token that is not a decimal string is dropped, not guessed", () => {
    const e = eventFromJson('{"time":1,"actor":"client 1","kind":"acquired","what":"x","token":7}');
    assert.equal(e?.token, undefined);
  });

  test("byTime orders by time and keeps arrival order for ties", () => {
    const a: DemoEvent = { timeMs: 5, actor: "demo", kind: "key", what: "a" };
    const b: DemoEvent = { timeMs: 5, actor: "demo", kind: "key", what: "b" };
    const c: DemoEvent = { timeMs: 1, actor: "demo", kind: "key", what: "c" };
    assert.deepEqual(
      byTime([a, b, c]).map((e) => e.what),
      ["c", "a", "b"],
    );
  });
});

describe("attributeLockEvents", () => {
  test("a key deleted while its owner never said unlock is an expiry; after unlock a release", () => {
    const events = attributeLockEvents(scenarioEvents(true));
    const lock = events.filter((e) => e.actor === "lock service");
    assert.deepEqual(
      lock.map((e) => [e.kind, e.token]),
      [
        ["granted", 7n],
        ["queued", 8n],
        ["expired", 7n],
        ["granted", 8n],
        ["released", 8n],
      ],
    );
    assert.match(lock[2]?.what ?? "", /lease of client 1 expired/);
    assert.match(lock[3]?.what ?? "", /lock held by client 2 \(token 8\)/);
    assert.match(lock[4]?.what ?? "", /client 2 released/);
  });

  test("an unlock reported after the deletion does not make it a release", () => {
    const events = scenarioEvents(true).map((e) =>
      e.actor === "client 2" && e.kind === "unlock" ? { ...e, timeMs: T0 + 2395 } : e,
    );
    const last = attributeLockEvents(events)
      .filter((e) => e.actor === "lock service")
      .at(-1);
    assert.equal(last?.kind, "expired");
  });
});

describe("judge", () => {
  test("unsafe: client 1's stale write accepted, the final value is wrong", () => {
    const events = attributeLockEvents(scenarioEvents(false));
    const v = judge(events, "value from client 1");
    assert.equal(v.correct, false);
    assert.equal(v.expectedValue, "value from client 2");
    const stale = v.writes.find((w) => w.actor === "client 1");
    assert.equal(stale?.stale, true);
    assert.equal(stale?.accepted, true);
    assert.equal(v.writes.find((w) => w.actor === "client 2")?.stale, false);
    assert.match(
      v.text,
      /^WRONG: final value "value from client 1"\. Client 1 wrote after its lease had expired/,
    );
  });

  test("fenced: client 1's write refused with the lower token, the final value is right", () => {
    const events = attributeLockEvents(scenarioEvents(true, 41n));
    const v = judge(events, "value from client 2");
    assert.equal(v.correct, true);
    const refused = v.writes.find((w) => !w.accepted);
    assert.equal(refused?.actor, "client 1");
    assert.equal(refused?.token, 41n);
    assert.equal(refused?.maxToken, 42n);
    assert.match(v.text, /refused client 1's late write \(token 41 < 42\)/);
  });

  test("a final value that is not the last holder's is wrong even without a stale write", () => {
    const v = judge(attributeLockEvents(scenarioEvents(true)), null);
    assert.equal(v.correct, false);
    assert.match(v.text, /^WRONG: final value \(no value\), expected "value from client 2"/);
  });

  test("pairWrites falls back to the token when the storage recorded no value", () => {
    const events = scenarioEvents(true).map((e) => (e.actor === "storage" ? { ...e, value: undefined } : e));
    const pairs = pairWrites(events);
    assert.deepEqual(
      pairs.map((p) => [p.send?.actor, p.answer.kind]),
      [
        ["client 2", "stored"],
        ["client 1", "rejected"],
      ],
    );
  });
});

describe("buildTimeline", () => {
  const fenced = () => {
    const events = attributeLockEvents(scenarioEvents(true));
    return buildTimeline({
      scenario: "fenced",
      setup: "setup",
      startMs: T0,
      events,
      verdict: judge(events, "value from client 2"),
    });
  };

  test("time zero is the scenario's start, as in the terminal's live lines", () => {
    const t = fenced();
    assert.equal(t.originMs, T0);
    assert.equal(t.durationMs, 2570);
    assert.deepEqual(t.lanes, ["client 1", "lock service", "client 2", "storage"]);
  });

  test("client 1: lease until the expiry, then a stale span, and the pause from SIGSTOP to resume", () => {
    const t = fenced();
    const c1 = t.spans.filter((s) => s.lane === "client 1");
    const lease = c1.find((s) => s.kind === "lease");
    assert.deepEqual([lease?.fromMs, lease?.toMs, lease?.token], [320, 2330, 7n]);
    const stale = c1.find((s) => s.kind === "stale");
    assert.deepEqual([stale?.fromMs, stale?.toMs], [2330, 2560]);
    const pause = c1.find((s) => s.kind === "pause");
    assert.deepEqual([pause?.fromMs, pause?.toMs], [330, 2530]);
    assert.equal(pause?.label, "frozen by SIGSTOP 2.2 s");
  });

  test("client 2: waits, then holds the lock until it releases it, with no stale span", () => {
    const t = fenced();
    const c2 = t.spans.filter((s) => s.lane === "client 2");
    assert.deepEqual(
      c2.map((s) => [s.kind, s.fromMs, s.toMs]),
      [
        ["waiting", 1401, 2340],
        ["lease", 2340, 2380],
      ],
    );
  });

  test("the lock service lane shows each lease the service granted, until it ended", () => {
    const t = fenced();
    const leases = t.spans.filter((s) => s.lane === "lock service");
    assert.deepEqual(
      leases.map((s) => [s.fromMs, s.toMs, s.label]),
      [
        [310, 2330, "client 1's lease, token 7"],
        [2331, 2390, "client 2's lease, token 8"],
      ],
    );
    const expired = t.marks.find((m) => m.kind === "expired");
    assert.equal(expired?.label, "client 1's lease expired");
  });

  test("writes go from the client to the storage with their tokens and answers", () => {
    const t = fenced();
    const writes = t.arrows.filter((a) => a.kind === "write");
    assert.deepEqual(
      writes.map((a) => [a.from, a.token, a.accepted, a.fromMs, a.toMs]),
      [
        ["client 2", 8n, true, 2350, 2360],
        ["client 1", 7n, false, 2531, 2540],
      ],
    );
    const refused = t.marks.find((m) => m.kind === "refused");
    assert.equal(refused?.label, "refused: token 7 < 8");
    const grants = t.arrows.filter((a) => a.kind === "grant");
    assert.deepEqual(
      grants.map((a) => [a.to, a.fromMs, a.toMs]),
      [
        ["client 1", 310, 320],
        ["client 2", 2331, 2340],
      ],
    );
  });

  test("unsafe writes carry no token", () => {
    const events = attributeLockEvents(scenarioEvents(false));
    const t = buildTimeline({
      scenario: "unsafe",
      setup: "",
      startMs: T0,
      events,
      verdict: judge(events, "value from client 1"),
    });
    const writes = t.arrows.filter((a) => a.kind === "write");
    assert.deepEqual(
      writes.map((a) => [a.label, a.accepted]),
      [
        ["write, no token", true],
        ["write, no token", true],
      ],
    );
    assert.equal(t.marks.filter((m) => m.kind === "refused").length, 0);
  });
});

describe("LiveLog", () => {
  test("prints in time order, attributed, each event once", async () => {
    const printed: DemoEvent[] = [];
    const log = new LiveLog((e) => printed.push(e), 30);
    const events = scenarioEvents(true);
    // Arrival order differs from time order: the storage's entry comes after the client's answer.
    const shuffled = [...events.slice(0, 16), events[17], events[16], ...events.slice(18)] as DemoEvent[];
    for (const e of shuffled) log.push(e);
    await new Promise((r) => setTimeout(r, 80));
    log.close();
    log.close();
    assert.equal(printed.length, events.length);
    assert.deepEqual(
      printed.map((e) => e.timeMs),
      events.map((e) => e.timeMs),
    );
    assert.ok(printed.some((e) => e.kind === "expired"));
    assert.ok(!printed.some((e) => e.kind === "deleted"));
  });
});
