/**
 * Launches a real etcd cluster (one or three members) from the installed `etcd` binary, on loopback
 * ports, with data in a temporary directory; ready when every member reports healthy; always torn down.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { etcdServices } from "../proto/load.js";
import type { StatusResponse } from "../proto/types.js";
import { type Child, freePort, LaunchError, launch, type TempDir, tempDir } from "./process.js";

/** How many times a cluster start is retried on new ports after losing a port race. */
const PORT_RETRIES = 3;

/** One member of a launched cluster. */
export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  /** `127.0.0.1:<clientPort>`, the form the lock client takes. */
  endpoint: string;
  dataDir: string;
  /** The running process; `undefined` while the member is killed. */
  child: Child | undefined;
}

/** Options of `startEtcdCluster`. */
export interface EtcdClusterOptions {
  /** Number of members, default 3. */
  size?: number;
  /** Fixed ports instead of free ones, e.g. the seed's 2379/22379/32379 and 2380/22380/32380. */
  ports?: { client: number; peer: number }[];
  /** Parent directory of the members' data; default a fresh temporary directory, removed by `stop`. */
  dataDir?: string;
  /** Readiness timeout per start, default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Print etcd's output on this process's stderr. */
  verbose?: boolean;
  /** More etcd flags for every member, e.g. `["--auth-token-ttl", "1"]`. */
  extraArgs?: string[];
  /**
   * Keep the members running after this process exits (for `fencelock cluster up`). Their logs then go
   * to `member-N.log` next to their data directories, since nobody reads their output any more.
   */
  detached?: boolean;
}

/** A running etcd cluster. */
export interface EtcdCluster {
  members: EtcdMember[];
  /** Client endpoints of all members, `host:port`. */
  endpoints: string[];
  /** SIGKILLs member `i`. */
  killMember(i: number): Promise<void>;
  /** Starts member `i` again on its data directory and waits until it is healthy. */
  restartMember(i: number): Promise<void>;
  /** Index of the current leader, asked of the first live member; -1 if none answers. */
  leaderIndex(): Promise<number>;
  /** Stops every member and removes the data directory if the cluster made it. Safe to call twice. */
  stop(): Promise<void>;
}

type UnaryCallback<T> = (err: grpc.ServiceError | null, res: T) => void;
type StatusMethod = (req: object, opts: grpc.CallOptions, cb: UnaryCallback<StatusResponse>) => void;

/** Asks a member for its status over gRPC. */
export async function etcdStatus(endpoint: string, timeoutMs = 1000): Promise<StatusResponse> {
  const client = new (etcdServices().Maintenance)(endpoint, grpc.credentials.createInsecure());
  try {
    const status = (client as unknown as { Status: StatusMethod }).Status.bind(client);
    return await new Promise<StatusResponse>((resolve, reject) =>
      status({}, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res))),
    );
  } finally {
    client.close();
  }
}

async function healthy(endpoint: string): Promise<boolean> {
  const res = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
  if (!res.ok) return false;
  const body = (await res.json()) as { health?: string };
  return body.health === "true";
}

/**
 * Starts an etcd cluster and resolves once every member is healthy (a leader is elected). Rejects with
 * `LaunchError` if `etcd` is missing, a member exits early, or the timeout passes; everything started is
 * stopped and removed before it rejects, including the member directories it made in a given `dataDir`.
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const size = options.ports?.length ?? options.size ?? 3;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const temp: TempDir | undefined = options.dataDir ? undefined : await tempDir("etcd");
  const root = options.dataDir ?? (temp as TempDir).path;
  const members: EtcdMember[] = [];
  /** The topmost directories this call made in a caller's `dataDir`, removed again if the start fails. */
  const made: string[] = [];
  for (let i = 0; i < size; i++) {
    const dataDir = join(root, `member-${i + 1}`);
    const first = await mkdir(dataDir, { recursive: true });
    if (first !== undefined) made.push(first);
    members.push({ name: `m${i + 1}`, clientPort: 0, peerPort: 0, endpoint: "", dataDir, child: undefined });
  }
  let initialCluster = "";
  let token = "";
  /** Gives every member its ports (the caller's, or free ones) and names the new cluster. */
  const assignPorts = async () => {
    for (const [i, m] of members.entries()) {
      m.clientPort = options.ports?.[i]?.client ?? (await freePort());
      m.peerPort = options.ports?.[i]?.peer ?? (await freePort());
      m.endpoint = `127.0.0.1:${m.clientPort}`;
    }
    initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(",");
    token = `fencelock-${process.pid}-${Date.now()}`;
  };

  const startMember = async (m: EtcdMember, signal = options.signal) => {
    const args = [
      "--name",
      m.name,
      "--data-dir",
      m.dataDir,
      "--listen-client-urls",
      `http://127.0.0.1:${m.clientPort}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${m.clientPort}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${m.peerPort}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${m.peerPort}`,
      "--initial-cluster",
      initialCluster,
      "--initial-cluster-token",
      token,
      "--initial-cluster-state",
      "new",
      "--heartbeat-interval",
      "50",
      "--election-timeout",
      "500",
      "--logger",
      "zap",
      "--log-level",
      "warn",
      // A detached member must not write to the pipes this process closes once it is ready.
      ...(options.detached ? ["--log-outputs", `${m.dataDir}.log`] : []),
      ...(options.extraArgs ?? []),
    ];
    m.child = await launch({
      name: `etcd-${m.name}`,
      command: "etcd",
      args,
      probe: async () => ((await healthy(m.endpoint)) ? true : undefined),
      timeoutMs,
      signal,
      output: options.verbose ? "inherit" : "ignore",
      detached: options.detached,
    });
  };

  const leaderIndex = async () => {
    for (const m of members) {
      if (!m.child?.running) continue;
      try {
        const status = await etcdStatus(m.endpoint);
        const idx = await Promise.all(
          members.map(async (x) =>
            x.child?.running ? (await etcdStatus(x.endpoint)).header?.member_id : undefined,
          ),
        );
        return idx.indexOf(status.leader);
      } catch {
        // Try the next member.
      }
    }
    return -1;
  };

  // A leader asked to stop first tries to hand its leadership over, which takes seconds when its peers
  // are stopping too: stop the followers first, then the leader.
  const stop = async (keepData = false) => {
    const leader = members.some((m) => m.child?.running) ? await leaderIndex() : -1;
    await Promise.all(members.map(async (m, i) => (i === leader ? undefined : m.child?.stop())));
    await members[leader]?.child?.stop();
    if (!keepData) await temp?.remove();
  };

  // A free port can be taken by another process between `freePort` and etcd binding it: then the
  // whole cluster starts again on new ports, from empty data directories (only ones this call made).
  const retries = options.ports === undefined && options.dataDir === undefined ? PORT_RETRIES : 0;
  for (let attempt = 0; ; attempt++) {
    await assignPorts();
    // The first member that fails aborts the others' starts, and every start ends before the
    // cleanup, so no member is left running (a member still launching has no child to stop yet).
    const abort = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;
    let err: unknown;
    await Promise.all(
      members.map((m) =>
        startMember(m, signal).catch((e: unknown) => {
          err ??= e;
          abort.abort();
        }),
      ),
    );
    if (err === undefined) break;
    const retry = attempt < retries && /address already in use/.test(String((err as Error)?.message));
    await stop(retry);
    if (!retry) {
      if (options.dataDir !== undefined)
        for (const dir of made) await rm(dir, { recursive: true, force: true });
      if (
        err instanceof LaunchError &&
        /ENOENT|could not start/.test(`${err.message} ${String(err.cause)}`)
      ) {
        throw new LaunchError("etcd is not installed (Debian: apt-get install etcd-server etcd-client)", {
          cause: err,
        });
      }
      throw err;
    }
    for (const m of members) {
      m.child = undefined;
      await rm(m.dataDir, { recursive: true, force: true });
      await mkdir(m.dataDir, { recursive: true });
    }
  }

  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    async killMember(i) {
      const m = members[i];
      if (!m) throw new RangeError(`no member ${i}`);
      await m.child?.kill();
      m.child = undefined;
    },
    async restartMember(i) {
      const m = members[i];
      if (!m) throw new RangeError(`no member ${i}`);
      if (m.child?.running) return;
      await startMember(m);
    },
    leaderIndex,
    stop: () => stop(),
  };
}
