/**
 * End-to-end torture runs on lockd with real processes: the checker must find lost updates when the
 * workers do not fence and a paused worker writes late, and must find nothing when they fence, with every
 * kind of fault. Both runs use fixed seeds, so their fault schedules are fixed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CLI_PATH, tempDir } from "../../src/testkit/index.js";
import { DEFAULT_OPTIONS, planFaults, runTorture, type TortureOptions } from "../../src/torture/index.js";

function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

function assertAllStopped(pids: number[]): void {
  assert.ok(pids.length > 0);
  for (const pid of pids) assert.ok(gone(pid), `process ${pid} is still running`);
}

describe("torture on lockd", () => {
  it("unfenced with pauses: the checker finds lost updates and names the writers", async () => {
    const options: TortureOptions = {
      ...DEFAULT_OPTIONS,
      backend: "lockd",
      mode: "unfenced",
      clients: 3,
      faults: ["pause"],
      durationMs: 8000,
      seed: "unfenced-pauses",
      intervalMs: 800,
    };
    const result = await runTorture(options);
    assertAllStopped(result.pids);
    assert.ok(result.faults.filter((f) => f.kind === "pause" && !f.error).length >= 2, "fewer than 2 pauses");
    const lost = result.check.violations.filter((v) => v.kind === "lost-update");
    assert.ok(lost.length >= 1, `no lost update found:\n${JSON.stringify(result.check.counts)}`);
    for (const v of lost) {
      assert.equal(v.writers?.length, 2);
      assert.ok(v.window.toMs >= v.window.fromMs);
    }
    const key = result.check.keys[0];
    assert.ok(key && key.lost > 0 && key.final !== null && key.final < key.accepted);
    assert.equal(result.check.ok, false);
  });

  it("fenced with every fault: no violation, and fencing refused the late writes", async () => {
    const options: TortureOptions = {
      ...DEFAULT_OPTIONS,
      backend: "lockd",
      mode: "fenced",
      clients: 3,
      faults: ["pause", "kill", "lockd-restart", "storage-restart", "partition"],
      durationMs: 15_000,
      seed: "fenced-all-5",
      intervalMs: 600,
    };
    const planned = new Set(
      planFaults({
        seed: options.seed,
        durationMs: options.durationMs,
        kinds: options.faults,
        clients: options.clients,
        members: 1,
        ttlMs: options.ttl * 1000,
        intervalMs: options.intervalMs,
      }).map((f) => f.kind),
    );
    assert.deepEqual([...planned].sort(), [...options.faults].sort(), "the seed must plan every fault kind");
    const result = await runTorture(options);
    assertAllStopped(result.pids);
    assert.deepEqual(
      result.faults.filter((f) => f.error),
      [],
    );
    assert.deepEqual(result.check.violations, []);
    assert.equal(result.check.ok, true);
    const refused = result.ops.filter((o) => o.kind === "write" && o.error === "STALE_FENCING_TOKEN");
    assert.ok(refused.length >= 1, "no stale write was refused: the pauses did not bite");
    const key = result.check.keys[0];
    assert.ok(key && key.accepted > 0 && key.final === key.accepted);
    assert.ok(result.restarts.length >= 2, "the storage was not restarted");
  });

  it("fencelock torture runs end to end and writes its JSON report and HTML timeline", async (t) => {
    const dir = await tempDir("torture-cli");
    t.after(() => dir.remove());
    const report = join(dir.path, "report.json");
    const html = join(dir.path, "timeline.html");
    const args = ["torture", "--duration", "2s", "--clients", "2", "--mode", "fenced", "--seed", "7"];
    const res = spawnSync(
      process.execPath,
      [CLI_PATH, ...args, "--quiet", "--report", report, "--html", html],
      {
        encoding: "utf8",
        timeout: 60_000,
      },
    );
    assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`);
    assert.match(res.stdout, /RESULT: PASS, no violations/);
    const parsed = JSON.parse(await readFile(report, "utf8"));
    assert.equal(parsed.result, "PASS");
    assert.ok(parsed.ops.length > 0);
    assert.equal(parsed.options.seed, "7");
    assert.match(await readFile(html, "utf8"), /<svg/);
  });
});

describe("torture in election mode on lockd", () => {
  const election = (mode: TortureOptions["mode"], seed: string): TortureOptions => ({
    ...DEFAULT_OPTIONS,
    backend: "lockd",
    scope: "election",
    mode,
    clients: 3,
    faults: ["pause"],
    durationMs: 8000,
    seed,
    intervalMs: 800,
  });

  it("unfenced: a paused leader's late writes lose updates", async () => {
    const result = await runTorture(election("unfenced", "unfenced-pauses"));
    assertAllStopped(result.pids);
    assert.ok(result.faults.filter((f) => f.kind === "pause" && !f.error).length >= 2, "fewer than 2 pauses");
    assert.ok(
      result.check.violations.some((v) => v.kind === "lost-update"),
      `no lost update found:\n${JSON.stringify(result.check.counts)}`,
    );
  });

  it("fenced with the leader's epoch as the token: no violation, and a deposed leader's write refused", async () => {
    const result = await runTorture(election("fenced", "unfenced-pauses"));
    assertAllStopped(result.pids);
    assert.deepEqual(result.check.violations, []);
    const refused = result.ops.filter((o) => o.kind === "write" && o.error === "STALE_FENCING_TOKEN");
    assert.ok(refused.length >= 1, "no stale write was refused: the pauses did not bite");
    const locks = result.ops.filter((o) => o.kind === "lock" && o.outcome === "ok");
    assert.ok(
      locks.length > 0 && locks.every((o) => o.lock === "/torture/election"),
      "the workers campaigned",
    );
  });
});
