/**
 * lockd gives a burst's memory back once it is idle: a real lockd process (`fencelock lockd`, whose
 * worker runs the idle collector) runs no collection while its heap has not grown, runs one within a
 * few seconds of the end of a fill of 100,000 keys, and its RSS falls. Without the collector V8 would
 * keep that memory for 10 to 20 s more.
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
  test("nothing while the heap has not grown; after a fill of 100,000 keys, one collection and less RSS", async (t) => {
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

      await fillKeys(lockd.endpoint, 100_000, "/idle/");
      const filled = rssMb(pid);
      const t0 = Date.now();
      let n = await collections();
      while (n === 0 && Date.now() - t0 < 10_000) {
        await sleep(250);
        n = await collections();
      }
      const seconds = (Date.now() - t0) / 1000;
      await sleep(1500);
      const rss = rssMb(pid);
      n = await collections();
      t.diagnostic(
        `lockd RSS ${filled.toFixed(0)} MB after the fill, ${rss.toFixed(0)} MB after ${n} collection(s), ` +
          `the first ${seconds.toFixed(1)} s after the fill`,
      );
      assert.equal(n, 1, "one collection after the fill, and no more while idle");
      assert.ok(rss <= filled - 15, `RSS ${rss.toFixed(0)} MB, ${filled.toFixed(0)} MB right after the fill`);
    } finally {
      await lockd.stop();
    }
  });
});
