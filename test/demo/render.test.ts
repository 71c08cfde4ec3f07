import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  attributeLockEvents,
  buildTimeline,
  escapeXml,
  judge,
  liveLine,
  logLine,
  renderHtml,
  renderTerminal,
  type ScenarioName,
} from "../../src/demo/index.js";
import { scenarioEvents, T0 } from "./fixtures.js";

function timeline(scenario: ScenarioName) {
  const fenced = scenario === "fenced";
  const events = attributeLockEvents(scenarioEvents(fenced));
  return {
    events,
    timeline: buildTimeline({
      scenario,
      setup: "Lock service: lockd <embedded>",
      startMs: T0,
      events,
      verdict: judge(events, fenced ? "value from client 2" : "value from client 1"),
    }),
  };
}

describe("renderTerminal", () => {
  test("one row per lane with the pause, expiry, writes and answers", () => {
    const text = renderTerminal(timeline("fenced").timeline, { width: 50 });
    const lines = text.split("\n");
    const row = (lane: string) => lines.find((l) => l.startsWith(lane)) ?? "";
    assert.match(row("client 1"), /●░+W/);
    assert.match(row("lock service"), /●━+◌━+✕●/);
    assert.match(row("client 2"), /·+●/);
    assert.match(row("storage"), /✓ *✗$/);
    assert.match(text, /^RIGHT: final value "value from client 2"/m);
    assert.ok(!text.includes("\x1b["), "no colour unless asked");
  });

  test("the unsafe scenario shows two accepted writes and a WRONG verdict, in colour when asked", () => {
    const text = renderTerminal(timeline("unsafe").timeline, { width: 50, color: true });
    const storageRow = text.split("\n").find((l) => l.startsWith("storage")) ?? "";
    assert.equal(storageRow.match(/✓/g)?.length, 2);
    assert.ok(!storageRow.includes("✗"), "no refused write");
    assert.ok(text.includes('\x1b[31mWRONG: final value "value from client 1"'), "the verdict in red");
  });

  test("time axis marks whole seconds", () => {
    const text = renderTerminal(timeline("fenced").timeline, { width: 50 });
    assert.match(text, /0s +1s +2s/);
    assert.match(
      text,
      /\n {14}s since scenario start \(as \+N\.NNN s above\)\n/,
      "the same origin as the live lines",
    );
  });
});

describe("renderHtml", () => {
  test("a self-contained page with four lanes, writes with tokens and the refused mark", () => {
    const { events, timeline: t } = timeline("fenced");
    const html = renderHtml([{ timeline: t, events }], new Date(T0));
    assert.doesNotMatch(html, /<script|<link|src="http|href="http|@import|url\(http/);
    assert.equal(html.match(/<g class="lane"/g)?.length, 4);
    assert.match(html, /class="arrow write" data-kind="write" data-token="8" data-accepted="true"/);
    assert.match(html, /class="arrow write" data-kind="write" data-token="7" data-accepted="false"/);
    assert.match(html, /class="mark refused" data-kind="refused" data-token="7"/);
    assert.match(html, /refused: token 7 &lt; 8/);
    assert.match(html, /class="span pause"/);
    assert.match(html, /class="mark expired"/);
    assert.match(html, /Lock service: lockd &lt;embedded&gt;/);
    assert.match(html, /<p class="verdict right">/);
    assert.match(html, /seconds since the scenario started \(the terminal's \+N\.NNN s\)/);
  });

  test("the unsafe page has no refused mark and says the value is wrong", () => {
    const { events, timeline: t } = timeline("unsafe");
    const html = renderHtml([{ timeline: t, events }], new Date(T0));
    assert.doesNotMatch(html, /class="mark refused"/);
    assert.equal(html.match(/class="mark accepted"/g)?.length, 2);
    assert.match(html, /<p class="verdict wrong">WRONG/);
  });

  test("escapeXml escapes markup and quotes", () => {
    assert.equal(escapeXml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});

describe("report lines", () => {
  test("live line: time since start, actor, token, what", () => {
    const line = liveLine(
      { timeMs: T0 + 1234, actor: "client 1", kind: "acquired", what: "acquired lock", token: 7n },
      T0,
    );
    assert.equal(line, "  +1.234 s  client 1      token 7     acquired lock");
  });

  test("log line: the seed's date and time, then the sentence", () => {
    const line = logLine({ timeMs: T0, actor: "client 1", kind: "start", what: "client 1 starts" });
    assert.match(line, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{3} client 1 starts$/);
  });
});
