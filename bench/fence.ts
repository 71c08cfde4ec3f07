/**
 * `npm run bench:fence`: what the PostgreSQL fencing guard costs. One PostgreSQL server (the test kit's,
 * `fsync=on`: every COMMIT waits for its WAL flush, as in production), one `pg` pool of 10 connections,
 * 10 concurrent writers, each updating its own row in `BEGIN; UPDATE; COMMIT`:
 * - unguarded: the transaction as it is (the baseline),
 * - guarded, distinct fences: the same transaction through `withFence`, each writer on its own fence,
 * - guarded, distinct fences, a new token for every transaction, as if each were a new holder's first
 *   (reported, no target),
 * - guarded, one shared fence: all writers on one fence, so they serialize on its row (reported, no target),
 * - for comparison, the guard as two round trips: BEGIN, then the public `checkFence` (how `withFence` sent
 *   them before it joined the two into one query string).
 * The modes run in interleaved rounds (A B C D E, then E D C B A, ...), so a swing in the machine's load weighs
 * on all alike; each figure is the median over the rounds, and each ratio the median of the per-round
 * ratios (a mode against the baseline of the same round). CPU columns: this process (`pg` and the guard)
 * and the PostgreSQL server (all its processes) per transaction, which show where the time goes when the
 * machine's cores are busy. Every round is bounded in time and in count.
 */
import { readdirSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import pg from "pg";
import { checkFence, ensureFenceTable, withFence } from "../src/guard/postgres/index.js";
import { type PostgresHandle, startPostgres } from "../src/testkit/index.js";

const WRITERS = 10;
/** Bound on transactions per writer per round, on top of the time bound. */
const MAX_TX_PER_WRITER = 50_000;
/** Bound on one guarded transaction, waiting for the shared fence's row included. */
const TX_TIMEOUT_MS = 10_000;

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "6" },
    seconds: { type: "string", default: "1.5" },
  },
});
const rounds = Number(values.rounds);
const roundMs = Number(values.seconds) * 1000;
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) {
  console.error("--rounds must be an integer from 1 to 20");
  process.exit(2);
}
if (!(roundMs > 0 && roundMs <= 10_000)) {
  console.error("--seconds must be a number from 0 to 10 (per round and mode)");
  process.exit(2);
}

/** Figures of one round of one mode. */
interface Round {
  transactions: number;
  errors: number;
  /** Transactions per second of wall time, all writers together. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time per transaction, µs: this process, the server. */
  clientCpuUs: number;
  serverCpuUs: number;
}

/** One way of running the writers' transaction. */
interface Mode {
  label: string;
  /** Writer `w`'s transaction. */
  tx(w: number): Promise<void>;
  rounds: Round[];
}

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** CPU time (user + system) of `pid` and its child processes so far, in µs (/proc counts 100 ticks a second). */
function treeCpuUs(pid: number): number {
  const ticks = (stat: string) => {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  };
  let total = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const s = ticks(readFileSync(`/proc/${entry}/stat`, "utf8"));
      if (Number(entry) === pid || s.ppid === pid) total += s.ticks;
    } catch {
      // The process ended between listing and reading.
    }
  }
  return total * 10_000;
}

/** Runs `WRITERS` writers, each repeating its transaction until `durationMs` is over or its count is. */
async function runRound(mode: Mode, durationMs: number, serverPid: number): Promise<Round> {
  const latencies: number[] = [];
  let errors = 0;
  const serverBefore = treeCpuUs(serverPid);
  const clientBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + durationMs;
  const writer = async (w: number) => {
    for (let i = 0; i < MAX_TX_PER_WRITER && performance.now() < end; i++) {
      const t = performance.now();
      try {
        await mode.tx(w);
        latencies.push(performance.now() - t);
      } catch (err) {
        errors++;
        if (errors === 1) console.error(`${mode.label}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  const seconds = (performance.now() - start) / 1000;
  const client = process.cpuUsage(clientBefore);
  const serverUs = treeCpuUs(serverPid) - serverBefore;
  const n = Math.max(1, latencies.length);
  latencies.sort((a, b) => a - b);
  return {
    clientCpuUs: (client.user + client.system) / n,
    serverCpuUs: serverUs / n,
    transactions: latencies.length,
    errors,
    throughput: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

const UPDATE = "UPDATE bench_rows SET n = n + 1 WHERE id = $1";

function modes(pool: pg.Pool): Mode[] {
  // Writer w's last token on its fence of the new-token mode: each of its transactions is a new holder's first.
  const tokens: bigint[] = [];
  return [
    {
      label: "unguarded BEGIN; UPDATE; COMMIT",
      async tx(w) {
        const c = await pool.connect();
        try {
          await c.query("BEGIN");
          await c.query(UPDATE, [w]);
          await c.query("COMMIT");
        } catch (err) {
          await c.query("ROLLBACK").catch(() => {});
          throw err;
        } finally {
          c.release();
        }
      },
      rounds: [],
    },
    {
      label: "withFence, distinct fences",
      async tx(w) {
        await withFence(pool, { fence: `bench-${w}`, token: 1n, timeoutMs: TX_TIMEOUT_MS }, async (c) => {
          await c.query(UPDATE, [w]);
        });
      },
      rounds: [],
    },
    {
      label: "withFence, distinct fences, new token each tx",
      async tx(w) {
        const token = (tokens[w] ?? 0n) + 1n;
        tokens[w] = token;
        await withFence(pool, { fence: `bench-new-${w}`, token, timeoutMs: TX_TIMEOUT_MS }, async (c) => {
          await c.query(UPDATE, [w]);
        });
      },
      rounds: [],
    },
    {
      label: "withFence, one shared fence",
      async tx(w) {
        await withFence(pool, { fence: "bench-shared", token: 1n, timeoutMs: TX_TIMEOUT_MS }, async (c) => {
          await c.query(UPDATE, [w]);
        });
      },
      rounds: [],
    },
    {
      label: "BEGIN, then checkFence (2 round trips)",
      async tx(w) {
        const c = await pool.connect();
        try {
          await c.query("BEGIN");
          await checkFence((sql, params) => c.query(sql, params), { fence: `bench-${w}`, token: 1n });
          await c.query(UPDATE, [w]);
          await c.query("COMMIT");
        } catch (err) {
          await c.query("ROLLBACK").catch(() => {});
          throw err;
        } finally {
          c.release();
        }
      },
      rounds: [],
    },
  ];
}

function table(all: Mode[]): string[] {
  const header = [
    "10 writers",
    "tx",
    "errors",
    "tx/s",
    "p50 ms",
    "p99 ms",
    "CPU µs/tx node",
    "CPU µs/tx server",
    "rounds tx/s",
  ];
  const lines = all.map((m) => [
    m.label,
    String(m.rounds.reduce((s, r) => s + r.transactions, 0)),
    String(m.rounds.reduce((s, r) => s + r.errors, 0)),
    median(m.rounds.map((r) => r.throughput)).toFixed(0),
    median(m.rounds.map((r) => r.p50Ms)).toFixed(2),
    median(m.rounds.map((r) => r.p99Ms)).toFixed(2),
    median(m.rounds.map((r) => r.clientCpuUs)).toFixed(0),
    median(m.rounds.map((r) => r.serverCpuUs)).toFixed(0),
    m.rounds.map((r) => r.throughput.toFixed(0)).join(" "),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmt)];
}

/** "met" or "not met", and the goal, for a figure that must stay on one side of its goal. */
function target(name: string, value: number, goal: number, atMost: boolean): string {
  const met = atMost ? value <= goal : value >= goal;
  return `${name.padEnd(50)}${value.toFixed(2)}x   ${met ? "met" : "not met"} (goal ${atMost ? "≤" : "≥"} ${goal.toFixed(2)}x)`;
}

let server: PostgresHandle | undefined;
let pool: pg.Pool | undefined;
try {
  server = await startPostgres({ fsync: true });
  pool = new pg.Pool({ ...server.pgConfig(), max: WRITERS });
  // Idle connections report the server's shutdown at the end on the pool; nothing to do about it.
  pool.on("error", () => {});
  await pool.query("CREATE TABLE bench_rows (id int PRIMARY KEY, n bigint NOT NULL)");
  await pool.query("INSERT INTO bench_rows SELECT g, 0 FROM generate_series(0, $1::int - 1) g", [WRITERS]);
  await ensureFenceTable(pool);
  const settings = await pool.query<{ name: string; setting: string }>(
    "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version') ORDER BY name",
  );
  const all = modes(pool);
  const [plain, distinct, newTokens, shared, twoTrips] = all as [Mode, Mode, Mode, Mode, Mode];
  console.log(
    `PostgreSQL fencing guard benchmark: ${WRITERS} concurrent writers on one pg pool of ${WRITERS}, each its own row; ` +
      `${rounds} interleaved rounds of ${values.seconds} s per mode; figures: median over rounds`,
  );
  console.log(
    `server: the test kit's PostgreSQL on 127.0.0.1, ${settings.rows.map((r) => `${r.name}=${r.setting}`).join(", ")} ` +
      "(every COMMIT waits for its WAL flush to disk)",
  );
  console.log(`machine: ${cpus().length} cores, load average ${loadavg()[0]?.toFixed(2)} at the start\n`);
  const serverPid = server.child.pid;
  for (const m of all) await runRound(m, 300, serverPid);
  for (let r = 0; r < rounds; r++) {
    // Every other round runs the modes in reverse, so a drift in load does not always favour the same one.
    for (const m of r % 2 === 0 ? all : [...all].reverse())
      m.rounds.push(await runRound(m, roundMs, serverPid));
  }
  for (const line of table(all)) console.log(line);
  console.log(`machine: load average ${loadavg()[0]?.toFixed(2)} at the end`);

  /** Median over the rounds of `m`'s figure against the baseline's in the same round. */
  const ratio = (m: Mode, figure: (r: Round) => number) =>
    median(m.rounds.map((r, i) => figure(r) / figure(plain.rounds[i] as Round)));
  const p50 = (r: Round) => r.p50Ms;
  const tps = (r: Round) => r.throughput;
  console.log("");
  console.log(target("guarded p50 / unguarded p50, distinct fences:", ratio(distinct, p50), 1.25, true));
  console.log(target("guarded / unguarded tx/s, distinct fences:", ratio(distinct, tps), 0.8, false));
  console.log(
    `${"guarded / unguarded tx/s, new token each tx:".padEnd(50)}${ratio(newTokens, tps).toFixed(2)}x   (no goal: every transaction raises its fence)`,
  );
  console.log(
    `${"guarded / unguarded tx/s, one shared fence:".padEnd(50)}${ratio(shared, tps).toFixed(2)}x   (no goal: the writers take turns on the fence row)`,
  );
  console.log(
    `${"2 round trips / unguarded tx/s, distinct fences:".padEnd(50)}${ratio(twoTrips, tps).toFixed(2)}x   (for comparison: BEGIN and the check sent apart)`,
  );
  console.log(
    `${"2 round trips / unguarded p50, distinct fences:".padEnd(50)}${ratio(twoTrips, p50).toFixed(2)}x`,
  );
} finally {
  await pool?.end();
  await server?.stop();
}
