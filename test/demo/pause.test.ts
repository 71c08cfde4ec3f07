import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { describe, test } from "node:test";
import {
  BadPauseError,
  blockPause,
  gcPause,
  PauseTimeoutError,
  parsePause,
  pauseFlag,
  sigstopPause,
} from "../../src/demo/index.js";

const PAUSE_MODULE = new URL("../../src/demo/pause.js", import.meta.url).href;

/** Runs `body` (an ES module using `pause`) in a child node process with a piped stdin. */
function child(body: string): ChildProcess {
  const code = `import * as pause from ${JSON.stringify(PAUSE_MODULE)};\n${body}`;
  return spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["pipe", "pipe", "inherit"] });
}

/** Resolves with the child's first stdout line that parses as JSON and has `key`. */
function firstJson(proc: ChildProcess, key: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no "${key}" line from the child`)), 20_000);
    proc.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        try {
          const obj = JSON.parse(line) as Record<string, unknown>;
          if (key in obj) {
            clearTimeout(timer);
            resolve(obj);
            return;
          }
        } catch {
          // Not complete yet.
        }
      }
    });
  });
}

describe("parsePause", () => {
  test("names and durations", () => {
    assert.deepEqual(parsePause("none"), { kind: "none" });
    assert.deepEqual(parsePause("keypress"), { kind: "keypress" });
    assert.deepEqual(parsePause("sigstop"), { kind: "sigstop" });
    assert.deepEqual(parsePause("gc"), { kind: "gc", garbage: 1_000_000 });
    assert.deepEqual(parsePause("gc", "5000"), { kind: "gc", garbage: 5000 });
    assert.deepEqual(parsePause("3s"), { kind: "block", ms: 3000 });
    assert.deepEqual(parsePause("1.5s"), { kind: "block", ms: 1500 });
    assert.deepEqual(parsePause("250ms"), { kind: "block", ms: 250 });
    assert.equal(pauseFlag({ kind: "block", ms: 3000 }), "3s");
    assert.equal(pauseFlag({ kind: "block", ms: 250 }), "250ms");
    assert.equal(pauseFlag({ kind: "keypress" }), "keypress");
  });

  test("anything else is a BadPauseError", () => {
    for (const [text, garbage] of [
      ["", undefined],
      ["forever", undefined],
      ["3", undefined],
      ["-1s", undefined],
      ["0ms", undefined],
      ["11m", undefined],
      ["700s", undefined],
      ["gc", "lots"],
      ["gc", "0"],
      ["keypress", "10"],
    ] as const) {
      assert.throws(
        () => parsePause(text, garbage),
        (err: unknown) => err instanceof BadPauseError && err.code === "BAD_PAUSE_MODE",
        `${text} ${garbage}`,
      );
    }
  });
});

describe("synchronous pauses", () => {
  test("blockPause stops the event loop: a due timer runs only after it", async () => {
    const started = Date.now();
    let firedAt = 0;
    const fired = new Promise<void>((resolve) =>
      setTimeout(() => {
        firedAt = Date.now();
        resolve();
      }, 1),
    );
    const result = blockPause(300);
    await fired;
    assert.ok(result.pausedMs >= 300, `paused ${result.pausedMs} ms`);
    assert.ok(firedAt - started >= 300, `the timer ran after ${firedAt - started} ms`);
  });

  test("gcPause allocates, forces four collections and reports them", () => {
    const result = gcPause(50_000);
    assert.match(result.detail, /^50000 objects, 4 forced collections \(\d+ ms, \d+ ms, \d+ ms, \d+ ms\)/);
    assert.equal(result.interrupted, false);
  });

  test("gcPause keeps collecting until it has lasted as long as asked (the demo asks for TTL + 0.5 s)", () => {
    const started = performance.now();
    let timerRan = false;
    const timer = setTimeout(() => {
      timerRan = true;
    }, 0);
    const result = gcPause(50_000, 400);
    clearTimeout(timer);
    assert.ok(performance.now() - started >= 400);
    assert.ok(result.pausedMs >= 400, `paused ${result.pausedMs} ms`);
    assert.equal(timerRan, false, "no timer ran: the process was stopped the whole time");
    assert.match(result.detail, /^50000 objects, \d+ forced collections/);
  });

  test("keypressPause reads stdin synchronously: timers wait for the key", async () => {
    const proc = child(`
      let timerRan = false;
      setTimeout(() => { timerRan = true; }, 5);
      console.log(JSON.stringify({ ready: true }));
      const r = pause.keypressPause();
      console.log(JSON.stringify({ ...r, timerRanDuringPause: timerRan }));
    `);
    try {
      await firstJson(proc, "ready");
      await new Promise((r) => setTimeout(r, 400));
      const result = firstJson(proc, "pausedMs");
      proc.stdin?.write("k");
      const r = await result;
      assert.equal(r.timerRanDuringPause, false);
      assert.ok((r.pausedMs as number) >= 350, `paused ${r.pausedMs} ms`);
      assert.equal(r.interrupted, false);
      assert.equal(r.detail, "key pressed");
    } finally {
      proc.kill("SIGKILL");
    }
  });

  test("keypressPause reports Ctrl-C as interrupted", async () => {
    const proc = child(`
      console.log(JSON.stringify({ ready: true }));
      console.log(JSON.stringify(pause.keypressPause()));
    `);
    try {
      await firstJson(proc, "ready");
      const result = firstJson(proc, "pausedMs");
      proc.stdin?.write("\x03");
      assert.equal((await result).interrupted, true);
    } finally {
      proc.kill("SIGKILL");
    }
  });
});

describe("sigstopPause", () => {
  test("measures a real SIGSTOP/SIGCONT from outside", async () => {
    const proc = child(`
      const p = pause.sigstopPause({ timeoutMs: 20000 });
      console.log(JSON.stringify({ ready: true }));
      console.log(JSON.stringify(await p));
    `);
    try {
      await firstJson(proc, "ready");
      await new Promise((r) => setTimeout(r, 100));
      const result = firstJson(proc, "pausedMs");
      proc.kill("SIGSTOP");
      await new Promise((r) => setTimeout(r, 700));
      proc.kill("SIGCONT");
      const r = await result;
      assert.ok((r.pausedMs as number) >= 650, `measured ${r.pausedMs} ms`);
      assert.match(r.detail as string, /SIGSTOP/);
      const [code] = await once(proc, "exit");
      assert.equal(code, 0);
    } finally {
      proc.kill("SIGKILL");
    }
  });

  test("times out with PauseTimeoutError and leaves no listener behind", async () => {
    const before = process.listenerCount("SIGCONT");
    await assert.rejects(sigstopPause({ timeoutMs: 50 }), PauseTimeoutError);
    assert.equal(process.listenerCount("SIGCONT"), before);
  });

  test("rejects with the signal's reason on abort, also when already aborted", async () => {
    const controller = new AbortController();
    const p = sigstopPause({ timeoutMs: 10_000, signal: controller.signal });
    controller.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
    await assert.rejects(
      sigstopPause({ timeoutMs: 10_000, signal: AbortSignal.abort(new Error("early")) }),
      /early/,
    );
    assert.equal(process.listenerCount("SIGCONT"), 0);
  });
});
