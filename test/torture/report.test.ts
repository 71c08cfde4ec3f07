import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium } from "playwright-core";
import { optionsFromArgs, parseDuration, run } from "../../src/cli/commands/torture.js";
import { check } from "../../src/torture/checker.js";
import { TortureConfigError } from "../../src/torture/errors.js";
import { htmlReport } from "../../src/torture/html.js";
import { progressLine } from "../../src/torture/progress.js";
import { jsonReport, summaryText } from "../../src/torture/report.js";
import { DEFAULT_OPTIONS, type FaultRecord, type TortureResult } from "../../src/torture/run.js";
import { FAULT_KINDS } from "../../src/torture/schedule.js";
import { assertLayout } from "../layout.js";
import { HistoryBuilder } from "./fixtures.js";

/** A run record around a hand-made unfenced history with one lost update. */
function lostUpdateResult(): TortureResult {
  const h = new HistoryBuilder("unfenced");
  h.lock("w0.1", 4703569812595502727n);
  h.read("w0.1", "k0", 4703569812595502727n, null);
  h.lock("w1.1", 4703569812595502728n);
  h.write("w1.1", "k0", 4703569812595502728n, 1);
  h.write("w0.1", "k0", 4703569812595502727n, 1);
  const input = h.input();
  return {
    options: { ...DEFAULT_OPTIONS, mode: "unfenced", clients: 2, faults: ["pause"] },
    startedMs: 1_000_000,
    endedMs: h.time + 10,
    schedule: [],
    faults: [{ index: 0, kind: "pause", startMs: 1_000_003, endMs: 1_000_006, target: "w0.1" }],
    ops: h.ops,
    audit: h.audit,
    finals: input.finals,
    restarts: [],
    crashes: [],
    pids: [],
    check: check(input),
  };
}

/**
 * A passing fenced run of 60 s with a fault every 2 s (a kind and a worker each, as the scheduler
 * picks them) and two stale writes the storage refused.
 */
function passingMinuteResult(): TortureResult {
  const h = new HistoryBuilder("fenced");
  h.lock("w0.1", 11n);
  h.write("w0.1", "k0", 11n, 1);
  h.lock("w1.1", 12n);
  h.write("w1.1", "k0", 12n, 2);
  h.write("w0.1", "k0", 11n, 3, { accepted: false });
  h.unlock("w1.1", 12n);
  h.lock("w2.1", 13n);
  h.write("w2.1", "k0", 13n, 3);
  h.write("w1.1", "k0", 12n, 4, { accepted: false });
  const input = h.input();
  const startedMs = 1_000_000 - 30_000;
  const faults: FaultRecord[] = Array.from({ length: 30 }, (_, i) => ({
    index: i,
    kind: FAULT_KINDS[i % FAULT_KINDS.length] as FaultRecord["kind"],
    startMs: startedMs + i * 2000,
    endMs: startedMs + i * 2000 + 900,
    target: `w${i % 4}.${1 + Math.floor(i / 4)}`,
  }));
  return {
    options: { ...DEFAULT_OPTIONS, clients: 4, durationMs: 60_000, faults: [...FAULT_KINDS] },
    startedMs,
    endedMs: startedMs + 60_000,
    schedule: [],
    faults,
    ops: h.ops,
    audit: h.audit,
    finals: input.finals,
    restarts: [],
    crashes: [],
    pids: [],
    check: check(input),
  };
}

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--no-first-run",
];

describe("torture HTML report in Chromium at 1200 px", () => {
  let browser: Browser | undefined;
  before(async () => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
  });

  const open = async (result: TortureResult) => {
    assert.ok(browser);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.setContent(htmlReport(result));
    return page;
  };
  const layout = {
    figures: "svg.run",
    shapes: ".hold, .w, .acc",
    drawn: "svg.run [data-kind]",
    minDrawn: 10,
  };

  it("a passing 60 s run: summary table, labelled fault bands, refused stale writes, no list of none", async () => {
    const result = passingMinuteResult();
    assert.ok(result.check.ok, "the fixture passes the checker");
    const page = await open(result);
    try {
      await assertLayout(page, layout);
      const summary = Object.fromEntries(
        await page
          .locator("table.summary tr")
          .evaluateAll((rows) => rows.map((r) => [r.firstChild?.textContent, r.lastChild?.textContent])),
      );
      assert.deepEqual(
        [
          summary.verdict,
          summary.operations,
          summary.faults,
          summary.violations,
          summary["stale writes refused"],
        ],
        ["PASS", String(result.ops.length), "30", "0", "2"],
      );
      assert.equal(await page.locator('svg.run .fault[data-kind="band"]').count(), 30);
      assert.equal(await page.locator("svg.run text.flabel").count(), 30, "every fault band is labelled");
      // Each refused write is a red cross twice: on its worker's lane and on the storage's.
      assert.equal(await page.locator('svg.run path.x[data-kind="refused"]').count(), 4);
      assert.match((await page.locator("h2 + p").textContent()) ?? "", /^No violations/);
      assert.equal(await page.locator("ol li").count(), 0, "no list when there are no violations");
    } finally {
      await page.close();
    }
  });

  it("a failing run: the verdict, and each violation band numbered", async () => {
    const page = await open(lostUpdateResult());
    try {
      await assertLayout(page, { ...layout, minDrawn: 5 });
      assert.match(
        (await page.locator("table.summary td.verdict").textContent()) ?? "",
        /^FAIL \(2 violations\)$/,
      );
      assert.deepEqual(await page.locator("svg.run text.vlabel").allTextContents(), ["#1", "#2"]);
      assert.equal(await page.locator("ol li").count(), 2);
    } finally {
      await page.close();
    }
  });
});

describe("torture reports", () => {
  it("summarises a failing run with its violations and a verdict", () => {
    const text = summaryText(lostUpdateResult());
    assert.match(text, /mode unfenced/);
    assert.match(text, /lost updates\s+1\s+lost-update 1/);
    assert.match(text, /\[lost-update\] lost update on k0: w0\.1:3 and w1\.1:2 both read 0 and wrote 1/);
    assert.match(text, /RESULT: FAIL, 2 violation\(s\); lost increments: 1/);
  });

  it("writes the JSON report with tokens as exact decimal strings", () => {
    const parsed = JSON.parse(jsonReport(lostUpdateResult()));
    assert.equal(parsed.result, "FAIL");
    assert.equal(parsed.version, 1);
    assert.equal(parsed.ops[0].token, "4703569812595502727");
    assert.equal(parsed.check.violations.length, 2);
  });

  it("draws every violation's window on the HTML timeline", () => {
    const html = htmlReport(lostUpdateResult());
    assert.equal((html.match(/class="violation" data-kind="window"/g) ?? []).length, 2);
    assert.match(html, /<title>fencelock torture: unfenced on lockd, seed 1: FAIL \(2 violations\)<\/title>/);
    assert.ok(!html.includes("<script"));
  });

  it("renders a progress line", () => {
    const line = progressLine(
      { elapsedMs: 5000, durationMs: 10_000, ops: 42, faults: 1, current: "pause w1.1" },
      10,
    );
    assert.equal(line, "[#####-----] 5/10 s  ops 42  faults 1  (pause w1.1)");
  });
});

describe("fencelock torture flags", () => {
  it("parses durations", () => {
    assert.equal(parseDuration("60s", "--duration"), 60_000);
    assert.equal(parseDuration("2m", "--duration"), 120_000);
    assert.equal(parseDuration("250ms", "--duration"), 250);
    assert.equal(parseDuration("3", "--duration"), 3000);
    assert.throws(() => parseDuration("soon", "--duration"), TortureConfigError);
  });

  it("turns flags into options", () => {
    const { options, report } = optionsFromArgs([
      "--clients",
      "5",
      "--mode",
      "write-fenced",
      "--faults",
      "all",
      "--backend",
      "etcd",
      "--seed",
      "9",
      "--report",
      "r.json",
    ]);
    assert.equal(options.clients, 5);
    assert.equal(options.mode, "write-fenced");
    assert.deepEqual(options.faults, ["pause", "kill", "etcd-member", "storage-restart", "partition"]);
    assert.equal(options.seed, "9");
    assert.equal(report, "r.json");
    assert.equal(options.resource, "storage");
  });

  it("takes --resource, and the faults its server allows", () => {
    const { options } = optionsFromArgs(["--resource", "postgres", "--faults", "all"]);
    assert.equal(options.resource, "postgres");
    assert.deepEqual(options.faults, ["pause", "kill", "lockd-restart", "partition", "postgres-restart"]);
    assert.equal(optionsFromArgs(["--resource", "sqlite"]).options.resource, "sqlite");
  });

  it("rejects bad flags with exit code 2 and starts nothing", async () => {
    for (const argv of [
      ["--clients", "0"],
      ["--clients", "x"],
      ["--mode", "sloppy"],
      ["--faults", "meteor"],
      ["--faults", "etcd-member"],
      ["--resource", "mysql"],
      ["--resource", "sqlite", "--faults", "postgres-restart"],
      ["--resource", "postgres", "--faults", "storage-restart"],
      ["--duration", "forever"],
      ["--unknown"],
      ["positional"],
    ]) {
      const errors: string[] = [];
      const original = console.error;
      console.error = (msg: string) => errors.push(msg);
      try {
        assert.equal(await run(argv), 2, argv.join(" "));
      } finally {
        console.error = original;
      }
      assert.match(errors.join("\n"), /fencelock torture: /);
    }
  });
});
