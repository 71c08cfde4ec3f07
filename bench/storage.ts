/**
 * `npm run bench:storage`: fenced writes over 10 keep-alive connections against the storage server
 * (durable, durable with fsync per commit, in-memory) and against a bare `node:http` baseline that
 * answers the same JSON, all measured in this run. Servers are child processes; the load generator runs
 * here, so they never share an event loop. Prints writes/s, p50, p99, the server's peak RSS, and ratios
 * against the baseline.
 */
import { readFileSync } from "node:fs";
import { type Child, CLI_PATH, launch, listeningLine, startStorage } from "../src/testkit/index.js";
import { type LoadResult, runLoad } from "./storage-load.js";

const CONNECTIONS = 10;
const WARMUP_MS = 500;
const RUN_MS = 3000;

interface Row {
  name: string;
  result: LoadResult;
  rssMb: number;
}

/** Peak resident memory (VmHWM) of a process, in MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function measure(name: string, port: number, child: Child): Promise<Row> {
  await runLoad({ port, connections: CONNECTIONS, durationMs: WARMUP_MS, keyPrefix: `warm-${name}` });
  const result = await runLoad({
    port,
    connections: CONNECTIONS,
    durationMs: RUN_MS,
    keyPrefix: `run-${name}`,
  });
  return { name, result, rssMb: peakRssMb(child.pid) };
}

async function main(): Promise<void> {
  console.log(
    `storage benchmark: fenced writes, ${CONNECTIONS} keep-alive connections, ${RUN_MS / 1000} s each`,
  );
  console.log(`(CLI ${CLI_PATH})\n`);
  const rows: Row[] = [];

  const baseline = await launch({
    name: "baseline",
    command: process.execPath,
    args: [new URL("./storage-baseline.js", import.meta.url).pathname],
    readyLine: listeningLine,
    timeoutMs: 20_000,
  });
  try {
    rows.push(await measure("baseline (bare node:http, no fencing)", baseline.ready.port, baseline));
  } finally {
    await baseline.stop();
  }

  const configs = [
    { name: "fencelock --memory", options: { memory: true } },
    { name: "fencelock durable (WAL, synchronous=NORMAL)", options: {} },
    { name: "fencelock durable (WAL, synchronous=FULL)", options: { synchronous: "full" as const } },
  ];
  for (const c of configs) {
    const storage = await startStorage(c.options);
    try {
      rows.push(await measure(c.name, storage.port, storage.child));
    } finally {
      await storage.stop();
    }
  }

  const base = rows[0] as Row;
  const header = ["server", "writes/s", "p50 ms", "p99 ms", "RSS MB", "errors", "vs baseline"];
  const lines = rows.map((r) => [
    r.name,
    r.result.writesPerSecond.toFixed(0),
    r.result.p50Ms.toFixed(3),
    r.result.p99Ms.toFixed(3),
    r.rssMb.toFixed(1),
    String(r.result.errors),
    r === base ? "1.00" : (r.result.writesPerSecond / base.result.writesPerSecond).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  console.log(fmt(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const l of lines) console.log(fmt(l));

  const memory = rows[1] as Row;
  const durable = rows[2] as Row;
  const check = (ok: boolean, text: string) => console.log(`${ok ? "met    " : "NOT met"}  ${text}`);
  console.log("\ntargets:");
  check(
    durable.result.writesPerSecond >= 20_000,
    `durable fenced writes >= 20000/s: ${durable.result.writesPerSecond.toFixed(0)}/s`,
  );
  check(durable.result.p99Ms <= 5, `durable p99 <= 5 ms: ${durable.result.p99Ms.toFixed(3)} ms`);
  check(
    memory.result.writesPerSecond >= 30_000,
    `--memory >= 30000/s: ${memory.result.writesPerSecond.toFixed(0)}/s`,
  );
  const maxRss = Math.max(...rows.slice(1).map((r) => r.rssMb));
  check(maxRss <= 150, `server RSS under load <= 150 MB: peak ${maxRss.toFixed(1)} MB`);
  console.log(
    `\nmachine: ${readFileSync("/proc/loadavg", "utf8").trim()} (loadavg), node ${process.version}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
