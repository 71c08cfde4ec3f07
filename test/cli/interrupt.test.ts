/**
 * Long-running commands interrupted as a user would (Ctrl-C is SIGINT, a service manager sends SIGTERM):
 * they stop every process they started, remove their temporary data, say "interrupted" and exit 130/143.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CLI_PATH, startLockd } from "../../src/testkit/index.js";

/** Every process below `pid`, read from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function interrupt(
  args: string[],
  readyText: RegExp,
  minChildren: number,
  signal: "SIGINT" | "SIGTERM",
) {
  const tmp = mkdtempSync(join(tmpdir(), "fencelock-interrupt-"));
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, TMPDIR: tmp, XDG_STATE_HOME: tmp },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const kill = setTimeout(() => child.kill("SIGKILL"), 90_000);
  try {
    const deadline = Date.now() + 60_000;
    const ready = () => readyText.test(out) && descendants(child.pid as number).length >= minChildren;
    while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, readyText, "the run got going");
    const started = descendants(child.pid as number);
    assert.ok(started.length >= minChildren, `it started ${started.length} child processes`);
    child.kill(signal);
    const code = await exited;
    const left = started.filter(alive);
    return { code, out, left, files: readdirSync(tmp) };
  } finally {
    clearTimeout(kill);
    child.kill("SIGKILL");
    for (const pid of descendants(child.pid as number)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

describe("interrupting a long-running command", () => {
  it("torture on SIGTERM: children stopped, temp data removed, 'interrupted', exit 143", async () => {
    const r = await interrupt(
      ["torture", "--duration", "60s", "--faults", "pause", "--quiet"],
      /^torture: mode/m,
      6,
      "SIGTERM",
    );
    assert.equal(r.code, 143, r.out);
    assert.match(r.out, /interrupted \(SIGTERM\)/);
    assert.doesNotMatch(r.out, /harness failed/);
    assert.deepEqual(r.left, [], "no process it started is left");
    assert.deepEqual(r.files, [], "no temporary data is left");
  });

  it("demo on SIGINT: children stopped, 'interrupted', exit 130", async () => {
    const r = await interrupt(["demo", "--no-html", "--pause", "keypress"], /client 1 .*paused/, 3, "SIGINT");
    assert.equal(r.code, 130, r.out);
    assert.match(r.out, /interrupted \(SIGINT\)/);
    assert.deepEqual(r.left, [], "no process it started is left");
  });

  it("a client on SIGTERM releases its lock and exits 143, and says so", async () => {
    const lockd = await startLockd({ memory: true });
    try {
      const child = spawn(
        process.execPath,
        [CLI_PATH, "client", "1", "--endpoints", lockd.endpoints.join(","), "--pause", "sigstop"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      const deadline = Date.now() + 30_000;
      while (!/waiting to be stopped/.test(out) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      child.kill("SIGTERM");
      assert.equal(await exited, 143, out);
      assert.match(out, /releasing lock/);
      assert.match(out, /exits with code 143 \(interrupted\)/);
    } finally {
      await lockd.stop();
    }
  });
});
