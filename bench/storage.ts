/**
 * `npm run bench:storage`: fenced writes over 10 keep-alive connections against the storage server
 * (in-memory, durable, durable with fsync per commit) and against a bare `node:http` baseline that
 * answers the same JSON, all measured in this run. Servers are child processes; the load generator runs
 * in this process, so it never shares an event loop with a server. The load generator is a minimal
 * HTTP/1.1 client on raw sockets (`runRawLoad`): `node:http`'s own client costs more CPU per request
 * than the servers do, and on two cores it would measure itself. The servers are measured in
 * interleaved rounds, so a swing in the machine's load hits all of them alike; each row is the median
 * round. A ratio to the baseline is the median over the rounds of this server's writes/s against the
 * baseline's in the same cycle of rounds (a few seconds apart), so that a slow minute weighs on both
 * sides of each ratio. Prints writes/s, p50, p99, the server's peak RSS and CPU time per write, and the
 * ratios; then one round from a `node:http` client for comparison.
 */
import { readFileSync } from "node:fs";
import { type Child, launch, listeningLine, startStorage } from "../src/testkit/index.js";
import { type LoadResult, runLoad, runRawLoad } from "./storage-load.js";

const CONNECTIONS = 10;
const WARMUP_MS = 500;
const ROUND_MS = 2000;
const ROUNDS = 7;

interface Target {
  name: string;
  port: number;
  child: Child;
  stop(): Promise<void>;
  rounds: LoadResult[];
  cpuMs: number;
  other?: LoadResult;
}

/** CPU time (user + system) a process has used so far, in ms (/proc counts 100 ticks per second). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Peak resident memory (VmHWM) of a process, in MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function median(rounds: LoadResult[]): LoadResult {
  return [...rounds].sort((a, b) => a.writesPerSecond - b.writesPerSecond)[
    Math.floor(rounds.length / 2)
  ] as LoadResult;
}

/** The median over the rounds of `t`'s writes/s against the baseline's in the same cycle. */
function pairedRatio(t: Target, baseline: Target): number {
  const ratios = t.rounds
    .map((r, i) => r.writesPerSecond / (baseline.rounds[i] as LoadResult).writesPerSecond)
    .sort((a, b) => a - b);
  return ratios[Math.floor(ratios.length / 2)] as number;
}

function table(targets: Target[]): string[] {
  const baseline = targets[0] as Target;
  const header = [
    "server",
    "writes/s",
    "p50 ms",
    "p99 ms",
    "RSS MB",
    "errors",
    "vs baseline",
    "CPU µs/write",
    "rounds w/s",
  ];
  const lines = targets.map((t) => {
    const m = median(t.rounds);
    const writes = t.rounds.reduce((s, r) => s + r.writes, 0);
    return [
      t.name,
      m.writesPerSecond.toFixed(0),
      m.p50Ms.toFixed(3),
      m.p99Ms.toFixed(3),
      peakRssMb(t.child.pid).toFixed(1),
      String(t.rounds.reduce((s, r) => s + r.errors, 0)),
      pairedRatio(t, baseline).toFixed(2),
      ((t.cpuMs * 1000) / Math.max(1, writes)).toFixed(0),
      t.rounds.map((r) => r.writesPerSecond.toFixed(0)).join(" "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmt)];
}

async function startTargets(): Promise<Target[]> {
  const targets: Target[] = [];
  const baseline = await launch({
    name: "baseline",
    command: process.execPath,
    args: [new URL("./storage-baseline.js", import.meta.url).pathname],
    readyLine: listeningLine,
    timeoutMs: 20_000,
  });
  targets.push({
    name: "baseline (bare node:http, no fencing)",
    port: baseline.ready.port,
    child: baseline,
    stop: () => baseline.stop(),
    rounds: [],
    cpuMs: 0,
  });
  const configs = [
    { name: "fencelock --memory", options: { memory: true } },
    { name: "fencelock durable (WAL, synchronous=NORMAL)", options: {} },
    { name: "fencelock durable (WAL, synchronous=FULL)", options: { synchronous: "full" as const } },
  ];
  for (const c of configs) {
    const s = await startStorage(c.options);
    targets.push({ name: c.name, port: s.port, child: s.child, stop: () => s.stop(), rounds: [], cpuMs: 0 });
  }
  return targets;
}

async function main(): Promise<void> {
  console.log(
    `storage benchmark: fenced seed-protocol writes, ${CONNECTIONS} keep-alive connections, ` +
      `${ROUNDS} interleaved rounds of ${ROUND_MS / 1000} s per server, median round shown; ` +
      "vs baseline: the median over the cycles of rounds of this server's writes/s against the baseline's",
  );
  console.log(
    "load generator: this process (raw-socket HTTP/1.1 client, one request in flight per connection); " +
      "servers: child processes\n",
  );
  const targets = await startTargets();
  try {
    for (const t of targets) {
      await runRawLoad({ port: t.port, connections: CONNECTIONS, durationMs: WARMUP_MS, keyPrefix: "warm" });
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const t of targets) {
        const before = cpuMs(t.child.pid);
        const prefix = `round${round}`;
        t.rounds.push(
          await runRawLoad({
            port: t.port,
            connections: CONNECTIONS,
            durationMs: ROUND_MS,
            keyPrefix: prefix,
          }),
        );
        t.cpuMs += cpuMs(t.child.pid) - before;
      }
    }
    for (const line of table(targets)) console.log(line);

    // The same servers once more, from node:http's client, which is what many callers use.
    for (const t of targets) {
      t.other = await runLoad({
        port: t.port,
        connections: CONNECTIONS,
        durationMs: ROUND_MS,
        keyPrefix: "node-http",
      });
    }
    const otherBase = (targets[0] as Target).other as LoadResult;
    console.log(
      "\nsame servers, node:http client (Agent, keepAlive, maxSockets 10; it costs more CPU per request than\n" +
        "the servers, so on 2 cores it mostly measures itself), one round:",
    );
    for (const t of targets) {
      const r = t.other as LoadResult;
      const ratio = (r.writesPerSecond / otherBase.writesPerSecond).toFixed(2);
      console.log(
        `  ${t.name.padEnd(44)} ${r.writesPerSecond.toFixed(0).padStart(7)} writes/s  p50 ${r.p50Ms.toFixed(3)} ms  ` +
          `p99 ${r.p99Ms.toFixed(3)} ms  errors ${r.errors}  vs baseline ${ratio}`,
      );
    }

    const [baseline, memoryTarget, durableTarget] = targets as [Target, Target, Target];
    const [base, memory, durable] = [baseline, memoryTarget, durableTarget].map((t) => median(t.rounds)) as [
      LoadResult,
      LoadResult,
      LoadResult,
    ];
    const check = (text: string, ok: boolean, goal: string) =>
      console.log(`  ${text}: ${ok ? "met" : "not met"} (goal ${goal})`);
    // The ratio of the median rounds too, for comparison with runs before the rounds were paired.
    const ratios = (t: Target, m: LoadResult) =>
      `${pairedRatio(t, baseline).toFixed(2)}x the baseline (ratio of the median rounds ${(m.writesPerSecond / base.writesPerSecond).toFixed(2)}x)`;
    const p99 = Math.max(memory.p99Ms, durable.p99Ms);
    const maxRss = Math.max(...targets.slice(1).map((t) => peakRssMb(t.child.pid)));
    console.log("\ntargets (median of the per-cycle ratios, against the baseline of this run):");
    check(
      `durable (normal) fenced writes ${ratios(durableTarget, durable)}`,
      pairedRatio(durableTarget, baseline) >= 0.75,
      ">= 0.75x",
    );
    check(
      `--memory fenced writes ${ratios(memoryTarget, memory)}`,
      pairedRatio(memoryTarget, baseline) >= 0.9,
      ">= 0.9x",
    );
    check(`p99 of --memory and durable (normal) ${p99.toFixed(3)} ms`, p99 <= 5, "<= 5 ms");
    check(`peak RSS of the fencelock servers ${maxRss.toFixed(1)} MB`, maxRss <= 150, "<= 150 MB");
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
  console.log(
    "\nCPU µs/write is the server's own CPU time per write (from /proc), whatever the load generator\n" +
      "(which shares the 2 cores) costs; 1e6 / that figure is what one free core could serve.",
  );
  console.log(`machine: loadavg ${readFileSync("/proc/loadavg", "utf8").trim()}, node ${process.version}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
