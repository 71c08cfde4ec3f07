/**
 * `npm run bench:lock`: the lock client against a local three-member etcd cluster (started here, on free
 * ports, and stopped after; or `--endpoints a,b,c` for a running cluster). Prints one table:
 * the ideal cycle (raw gRPC) as the baseline, fencelock's uncontended lock+unlock against it, the `etcd3`
 * package as the peer, and contention with 4, 16 and 64 waiters. Bounded: about a minute.
 */
import { parseArgs } from "node:util";
import { startEtcdCluster } from "../src/testkit/index.js";
import {
  type ContentionStats,
  type CycleStats,
  etcd3Contention,
  etcd3Runner,
  fencelockContention,
  fencelockRunner,
  idealRunner,
  measureInterleaved,
} from "./lock-cycles.js";
import { targetLine } from "./target.js";

const { values } = parseArgs({
  options: {
    endpoints: { type: "string" },
    seconds: { type: "string", default: "3" },
  },
});
const durationMs = Number(values.seconds) * 1000;
if (!(durationMs > 0 && durationMs <= 10_000)) {
  console.error("--seconds must be a number from 0 to 10 (per row)");
  process.exit(2);
}

const cluster = values.endpoints ? undefined : await startEtcdCluster({ size: 3 });
const endpoints = values.endpoints?.split(",") ?? (cluster?.endpoints as string[]);
const f = (n: number, digits = 2) => n.toFixed(digits);

try {
  const run = { durationMs, warmup: 20 };
  const [ideal, ours, peer] = (await measureInterleaved(
    [await idealRunner(endpoints), await fencelockRunner(endpoints), await etcd3Runner(endpoints)],
    { durationMs: 3 * durationMs, warmup: 20 },
  )) as [CycleStats, CycleStats, CycleStats];

  const rows: string[] = [];
  const line = (cells: string[], widths: number[]) =>
    rows.push(
      cells
        .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
        .join("  "),
    );
  rows.push(
    `fencelock lock benchmark — ${cluster ? "local 3-member etcd (testkit)" : endpoints.join(",")}, ${values.seconds} s per row`,
  );
  rows.push("");
  const w1 = [50, 8, 10, 8, 8];
  line(["uncontended (one at a time, interleaved)", "cycles", "cycles/s", "p50 ms", "p99 ms"], w1);
  for (const s of [ideal, ours, peer] as CycleStats[]) {
    line([s.label, String(s.cycles), f(s.throughput, 1), f(s.p50Ms), f(s.p99Ms)], w1);
  }
  rows.push("");
  rows.push(targetLine("fencelock p50 / ideal p50:", ours.p50Ms / ideal.p50Ms, 1.1, "max"));
  rows.push(targetLine("fencelock / etcd3 throughput:", ours.throughput / peer.throughput, 1.4, "min"));
  rows.push("");

  const w2 = [22, 8, 8, 10, 18, 16];
  line(["contention (one lock)", "waiters", "cycles", "cycles/s", "wake-ups/release", "FIFO violations"], w2);
  const contended: ContentionStats[] = [];
  for (const n of [4, 16, 64]) {
    contended.push(await fencelockContention(endpoints, n, run));
    contended.push(await etcd3Contention(endpoints, n, run));
  }
  for (const c of contended) {
    line(
      [
        c.label,
        String(c.waiters),
        String(c.cycles),
        f(c.throughput, 1),
        f(c.wakeupsPerRelease),
        String(c.fifoViolations),
      ],
      w2,
    );
  }
  rows.push("");
  rows.push("wake-ups/release: fencelock = watch events delivered to waiters per hand-over (goal 1.00);");
  rows.push("                  etcd3 = failed acquire attempts per release (it cannot wait, so it polls).");
  rows.push("FIFO violation: an acquisition that overtook a contender the server already knew was waiting");
  rows.push("                before the winner even asked (goal 0).");
  console.log(rows.join("\n"));
} finally {
  await cluster?.stop();
}
