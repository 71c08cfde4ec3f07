/**
 * lockd gives a burst's memory back once it is idle: a real lockd process (`fencelock lockd`, whose
 * worker runs the idle collector) runs no collection while its heap has not grown, runs one within a
 * few seconds of the end of a fill of 100,000 keys, and its RSS falls. Without the collector V8 would
 * keep that memory for 10 to 20 s more. Fills that recur back off: the third within a minute waits
 * four seconds of idle instead of two.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fillKeys, freePort, startLockd } from "../../src/testkit/index.js";

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  assert.ok(m, "no VmRSS line");
  return Number(m[1]) / 1024;
}

describe("lockd's idle collector", { timeout: 90_000 }, () => {
  test("nothing while the heap has not grown; one collection and less RSS after a fill; recurring fills back off", async (t) => {
    const metricsAt = `127.0.0.1:${await freePort()}`;
    const lockd = await startLockd({ extraArgs: ["--metrics-listen", metricsAt] });
    try {
      const { pid } = lockd.child;
      const collections = async () => {
        const text = await (await fetch(`http://${metricsAt}/metrics`)).text();
        const line = text.split("\n").find((l) => l.startsWith("lockd_idle_gc_duration_seconds_count "));
        assert.ok(line, "no lockd_idle_gc_duration_seconds_count in the metrics");
        return Number(line.split(" ")[1]);
      };

      // Idle from the start, longer than the two seconds a collection waits for, but nothing to give back.
      await sleep(3000);
      assert.equal(await collections(), 0);

      // Polls the count until it passes `count` or `ms` pass; resolves with the count and the wait.
      const waitPast = async (count: number, ms: number) => {
        const t0 = Date.now();
        let n = await collections();
        while (n <= count && Date.now() - t0 < ms) {
          await sleep(100);
          n = await collections();
        }
        return { n, seconds: (Date.now() - t0) / 1000 };
      };

      await fillKeys(lockd.endpoint, 100_000, "/idle/a/");
      const filled = rssMb(pid);
      const first = await waitPast(0, 10_000);
      await sleep(1500);
      const rss = rssMb(pid);
      const after = await collections();
      t.diagnostic(
        `lockd RSS ${filled.toFixed(0)} MB after the fill, ${rss.toFixed(0)} MB after ${after} collection(s), ` +
          `the first ${first.seconds.toFixed(1)} s after the fill`,
      );
      assert.equal(after, 1, "one collection after the fill, and no more while idle");
      assert.ok(rss <= filled - 15, `RSS ${rss.toFixed(0)} MB, ${filled.toFixed(0)} MB right after the fill`);

      // Bursts that recur: the second within a minute still waits two seconds, the third four.
      await fillKeys(lockd.endpoint, 100_000, "/idle/a/");
      const second = await waitPast(1, 10_000);
      await fillKeys(lockd.endpoint, 100_000, "/idle/a/");
      const third = await waitPast(2, 15_000);
      t.diagnostic(
        `later bursts: a collection ${second.seconds.toFixed(1)} s after the second, ${third.seconds.toFixed(1)} s after the third`,
      );
      assert.equal(second.n, 2, "no collection after the second burst");
      assert.equal(third.n, 3, "no collection after the third burst");
      assert.ok(second.seconds < 3.5, `the second burst's collection came ${second.seconds} s after it`);
      assert.ok(third.seconds >= 3.5, `the third burst's collection came ${third.seconds} s after it`);
    } finally {
      await lockd.stop();
    }
  });
});
