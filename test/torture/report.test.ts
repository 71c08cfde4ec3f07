import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { optionsFromArgs, parseDuration, run } from "../../src/cli/commands/torture.js";
import { check } from "../../src/torture/checker.js";
import { TortureConfigError } from "../../src/torture/errors.js";
import { htmlReport } from "../../src/torture/html.js";
import { progressLine } from "../../src/torture/progress.js";
import { jsonReport, summaryText } from "../../src/torture/report.js";
import { DEFAULT_OPTIONS, type TortureResult } from "../../src/torture/run.js";
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
    assert.equal((html.match(/class="violation"/g) ?? []).length, 2);
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
