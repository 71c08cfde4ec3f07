/**
 * lockd gives a burst's memory back once it is idle: a real lockd process (`fencelock lockd`, whose
 * worker runs the idle collector) runs no collection while its heap has not grown, runs one within a
 * few seconds of the end of a fill of 100,000 keys, and its RSS falls. Without the collector V8 would
 * keep that memory for 10 to 20 s more. Fills that recur back off: the third within a minute waits
 * ten seconds of idle instead of five. With 160,000 keys live, none runs.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fillKeys, freePort, processMemoryMb, startLockd } from "../../src/testkit/index.js";

/** The idle collections lockd has run, from its metrics at `metricsAt`. */
async function collections(metricsAt: string): Promise<number> {
  const text = await (await fetch(`http://${metricsAt}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("lockd_idle_gc_duration_seconds_count "));
  assert.ok(line, "no lockd_idle_gc_duration_seconds_count in the metrics");
  return Number(line.split(" ")[1]);
}

/** A lockd process serving metrics on a free port, and its count of idle collections. */
async function lockdWithMetrics() {
  const metricsAt = `127.0.0.1:${await freePort()}`;
  const lockd = await startLockd({ extraArgs: ["--metrics-listen", metricsAt] });
  return { lockd, count: () => collections(metricsAt) };
}

describe("lockd's idle collector", { timeout: 120_000 }, () => {
  test("nothing while the heap has not grown; one collection and less RSS after a fill; recurring fills back off", async (t) => {
    const { lockd, count } = await lockdWithMetrics();
    try {
      const { pid } = lockd.child;

      // Idle from the start, longer than the six seconds a collection waits for, but nothing to give back.
      await sleep(7000);
      assert.equal(await count(), 0);

      // Polls the count until it passes `past` or `ms` pass; resolves with the count and the wait.
      const waitPast = async (past: number, ms: number) => {
        const t0 = Date.now();
        let n = await count();
        while (n <= past && Date.now() - t0 < ms) {
          await sleep(100);
          n = await count();
        }
        return { n, seconds: (Date.now() - t0) / 1000 };
      };

      await fillKeys(lockd.endpoint, 100_000, "/idle/a/");
      const filled = processMemoryMb(pid);
      const first = await waitPast(0, 10_000);
      await sleep(1500);
      const rss = processMemoryMb(pid);
      const after = await count();
      t.diagnostic(
        `lockd RSS ${filled.toFixed(0)} MB after the fill, ${rss.toFixed(0)} MB after ${after} collection(s), ` +
          `the first ${first.seconds.toFixed(1)} s after the fill`,
      );
      assert.equal(after, 1, "one collection after the fill, and no more while idle");
      assert.ok(rss <= filled - 15, `RSS ${rss.toFixed(0)} MB, ${filled.toFixed(0)} MB right after the fill`);

      // Bursts that recur: the second within a minute still waits about six seconds, the third ten.
      await fillKeys(lockd.endpoint, 100_000, "/idle/a/");
      const second = await waitPast(1, 10_000);
      await fillKeys(lockd.endpoint, 100_000, "/idle/a/");
      const third = await waitPast(2, 20_000);
      t.diagnostic(
        `later bursts: a collection ${second.seconds.toFixed(1)} s after the second, ${third.seconds.toFixed(1)} s after the third`,
      );
      assert.equal(second.n, 2, "no collection after the second burst");
      assert.equal(third.n, 3, "no collection after the third burst");
      assert.ok(second.seconds < 9, `the second burst's collection came ${second.seconds} s after it`);
      assert.ok(third.seconds >= 9, `the third burst's collection came ${third.seconds} s after it`);
    } finally {
      await lockd.stop();
    }
  });

  test("nothing past 150,000 live keys, where the pause would grow too long", async () => {
    const { lockd, count } = await lockdWithMetrics();
    try {
      await fillKeys(lockd.endpoint, 160_000, "/idle/many/");
      // The first collection would wait about six seconds; give it half as long again.
      await sleep(9000);
      assert.equal(await count(), 0, "a collection ran with 160,000 keys live");
    } finally {
      await lockd.stop();
    }
  });
});
