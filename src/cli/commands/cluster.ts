/**
 * `fencelock cluster up|down|status`: etcd's contrib/lock `goreman start`, a local three-member etcd cluster on
 * loopback (clients 2379/22379/32379, peers 2380/22380/32380), running in the background until `down`.
 * `up` records the members' PIDs in the state directory; `down` stops only those PIDs.
 */

import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rm, rmdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { type EtcdCluster, etcdStatus, startEtcdCluster } from "../../testkit/etcd.js";
import { parsedOrAnswered, parseFlags } from "../flags.js";

/** One line for `fencelock --help`. */
export const summary = "start, stop or show a local three-member etcd cluster (up | down | status)";

const HELP = `usage: fencelock cluster <up|down|status> [flags]

  up       start three etcd members in the background (data and PIDs in the state directory)
  down     stop the members that "up" started (only their recorded PIDs)
  status   show each member, its health and the leader (exit 1 unless all are healthy)

flags:
  --state DIR        state directory (default $XDG_STATE_HOME/fencelock or ~/.local/state/fencelock)
  --ports-base N     up: client ports N, N+2, N+4 and peer ports N+1, N+3, N+5
                     (default: etcd's contrib/lock ports 2379/22379/32379 and 2380/22380/32380)
  --purge            down: also delete the members' data
  --json             status: print JSON
  -h, --help         this help

exit codes: 0 done (status: every member healthy), 1 a member failed to start, status found no cluster
or a member not healthy, or etcd
is not installed, 2 bad flags`;

/** What `up` records. */
interface ClusterState {
  members: { name: string; pid: number; clientPort: number; peerPort: number; endpoint: string }[];
  dataDir: string;
  startedAt: string;
}

const SEED_PORTS = [
  { client: 2379, peer: 2380 },
  { client: 22379, peer: 22380 },
  { client: 32379, peer: 32380 },
];

function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "fencelock");
}

function portsFrom(base: string | undefined): { client: number; peer: number }[] | string {
  if (base === undefined) return SEED_PORTS;
  const n = Number(base);
  if (!Number.isInteger(n) || n < 1024 || n > 65_530)
    return `--ports-base must be a whole number from 1024 to 65530, got "${base}"`;
  return [0, 1, 2].map((i) => ({ client: n + 2 * i, peer: n + 2 * i + 1 }));
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** True if `pid` runs and is an etcd process (guards against a recycled PID). */
function isEtcd(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]?.endsWith("etcd") ?? false;
  } catch {
    return true;
  }
}

async function readState(stateDir: string): Promise<ClusterState | undefined> {
  const file = join(stateDir, "cluster.json");
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, "utf8")) as ClusterState;
}

async function up(stateDir: string, portsBase: string | undefined): Promise<number> {
  const ports = portsFrom(portsBase);
  if (typeof ports === "string") {
    console.error(`fencelock cluster: ${ports}`);
    return 2;
  }
  const previous = await readState(stateDir);
  if (previous?.members.some((m) => isEtcd(m.pid))) {
    console.error(
      `fencelock cluster: already running (state in ${stateDir}); see "fencelock cluster status"`,
    );
    return 1;
  }
  for (const p of ports.flatMap((x) => [x.client, x.peer])) {
    if (!(await portFree(p))) {
      console.error(
        `fencelock cluster: port ${p} on 127.0.0.1 is busy (another etcd or program listens there); ` +
          'stop it, or choose other ports with "--ports-base N"',
      );
      return 1;
    }
  }
  const dataDir = join(stateDir, "etcd");
  const made = await mkdir(stateDir, { recursive: true });
  let cluster: EtcdCluster;
  try {
    cluster = await startEtcdCluster({ ports, dataDir, detached: true });
  } catch (err) {
    // A failed first start leaves no empty folders behind (the cluster removes the members' own).
    await removeEmpty(stateDir, made);
    throw err;
  }
  const state: ClusterState = {
    members: cluster.members.map((m) => ({
      name: m.name,
      pid: m.child?.pid ?? 0,
      clientPort: m.clientPort,
      peerPort: m.peerPort,
      endpoint: m.endpoint,
    })),
    dataDir,
    startedAt: new Date().toISOString(),
  };
  await writeFile(join(stateDir, "cluster.json"), `${JSON.stringify(state, null, 2)}\n`);
  for (const m of state.members) console.log(`${m.name}  pid ${m.pid}  ${m.endpoint}  (peer ${m.peerPort})`);
  console.log(`endpoints: ${cluster.endpoints.join(",")}`);
  console.log(`data and logs: ${dataDir}`);
  return 0;
}

/** Removes `dir` and its parents up to `made` (the first directory `mkdir -p` made), while empty. */
async function removeEmpty(dir: string, made: string | undefined): Promise<void> {
  if (made === undefined) return;
  for (let d = dir; d.startsWith(made); d = dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
    if (d === made) return;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isEtcd(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isEtcd(pid);
}

async function stopPid(pid: number): Promise<void> {
  if (!isEtcd(pid)) return;
  process.kill(pid, "SIGTERM");
  if (!(await waitGone(pid, 10_000))) {
    process.kill(pid, "SIGKILL");
    await waitGone(pid, 5_000);
  }
}

async function leaderEndpoint(state: ClusterState): Promise<string | undefined> {
  for (const m of state.members) {
    try {
      const status = await etcdStatus(m.endpoint, 500);
      for (const x of state.members) {
        if ((await etcdStatus(x.endpoint, 500).catch(() => undefined))?.header?.member_id === status.leader) {
          return x.endpoint;
        }
      }
    } catch {
      // Ask the next member.
    }
  }
  return undefined;
}

async function down(stateDir: string, purge: boolean): Promise<number> {
  const state = await readState(stateDir);
  if (!state) {
    console.log(`no cluster recorded in ${stateDir}; nothing to stop`);
    return 0;
  }
  // Followers first: a leader stopped while its peers stop too waits seconds to hand over leadership.
  const leader = await leaderEndpoint(state);
  const others = state.members.filter((m) => m.endpoint !== leader);
  await Promise.all(others.map((m) => stopPid(m.pid)));
  for (const m of state.members) if (m.endpoint === leader) await stopPid(m.pid);
  await rm(join(stateDir, "cluster.json"), { force: true });
  if (purge) await rm(state.dataDir, { recursive: true, force: true });
  console.log(
    `stopped ${state.members.map((m) => `${m.name} (pid ${m.pid})`).join(", ")}${purge ? "; data deleted" : ""}`,
  );
  return 0;
}

async function status(stateDir: string, json: boolean): Promise<number> {
  const state = await readState(stateDir);
  if (!state) {
    console.error(
      `fencelock cluster: no cluster recorded in ${stateDir} (start one with "fencelock cluster up")`,
    );
    return 1;
  }
  const rows = await Promise.all(
    state.members.map(async (m) => {
      const running = isEtcd(m.pid);
      const s = running ? await etcdStatus(m.endpoint, 1000).catch(() => undefined) : undefined;
      return {
        name: m.name,
        pid: m.pid,
        endpoint: m.endpoint,
        peerPort: m.peerPort,
        state: !running ? "stopped" : s ? "healthy" : "unreachable",
        leader: s !== undefined && s.leader === s.header?.member_id,
        version: s?.version ?? "",
        raftTerm: s?.raftTerm ?? "",
      };
    }),
  );
  if (json) console.log(JSON.stringify({ members: rows }, null, 2));
  else {
    console.log("member  pid       endpoint          peer   state        leader  version  raft term");
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(8)}${String(r.pid).padEnd(10)}${r.endpoint.padEnd(18)}${String(r.peerPort).padEnd(7)}` +
          `${r.state.padEnd(13)}${(r.leader ? "*" : "").padEnd(8)}${r.version.padEnd(9)}${r.raftTerm}`,
      );
    }
  }
  return rows.every((r) => r.state === "healthy") ? 0 : 1;
}

/** Runs `fencelock cluster …`; resolves to the exit code (2 for bad flags). */
export async function run(argv: string[]): Promise<number> {
  const parsed = parsedOrAnswered(
    () => parse(argv),
    HELP,
    (message) => {
      console.error(`fencelock cluster: ${message}\n\n${HELP}`);
      return 2;
    },
  );
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  const [action, ...extra] = positionals;
  if (extra.length > 0 || !["up", "down", "status"].includes(action ?? "")) {
    console.error(`fencelock cluster: expected one of up, down, status\n\n${HELP}`);
    return 2;
  }
  const stateDir = values.state ?? defaultStateDir();
  if (action === "up") return up(stateDir, values["ports-base"]);
  if (action === "down") return down(stateDir, values.purge ?? false);
  return status(stateDir, values.json ?? false);
}

function parse(argv: string[]) {
  return parseFlags({
    args: argv,
    allowPositionals: true,
    options: {
      state: { type: "string" },
      "ports-base": { type: "string" },
      purge: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
