/**
 * Starts a lockd node: opens the store, serves the etcd v3 services over gRPC, expires leases and
 * compacts old history on timers, and closes everything in order.
 */
import { mkdirSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { etcdServices } from "../proto/index.js";
import type { SyncMode } from "./db.js";
import { LockdStartError } from "./errors.js";
import { etcdHeaders } from "./etcd-headers.js";
import { GrpcFrame, sendFramesAsTheyAre } from "./grpc-frame.js";
import { startIdleCollector } from "./idle-collector.js";
import { encodeKvAnswer, type KvAnswerMethod } from "./kv-answers.js";
import { type KvRequestMethod, kvRequestDecoders } from "./kv-requests.js";
import { Metrics, serveMetrics } from "./metrics.js";
import {
  authHandlers,
  clusterHandlers,
  type HandlerContext,
  kvHandlers,
  type Log,
  leaseHandlers,
  maintenanceHandlers,
} from "./services.js";
import { Store } from "./store.js";
import { WatchHub } from "./watch-hub.js";
import { WatchStream } from "./watch-stream.js";

/** How a lockd node is started. Every field has a default. */
export interface LockdOptions {
  /** Address to bind; default 127.0.0.1 (loopback only). */
  host?: string;
  /** Port; default 2379; 0 picks a free one. */
  port?: number;
  /** Directory of the database (`lockd.db`); created if missing. Required unless `memory`. */
  dataDir?: string;
  /** Keep everything in memory: nothing survives the process. For tests and demos. */
  memory?: boolean;
  /** "full" (default): fsync every commit; "normal": survive a killed process, not a power loss. */
  sync?: SyncMode;
  /** Revisions of history kept for watches and past reads; older ones are compacted. Default 10,000. */
  retentionRevisions?: bigint;
  /** How often auto-compaction runs, in ms; default 10 s. */
  compactIntervalMs?: number;
  /** Largest request, as etcd's `--max-request-bytes`; default 1.5 MiB. */
  maxRequestBytes?: number;
  /** Largest total size of live keys and values; default 256 MiB. */
  quotaBytes?: number;
  /** Operation budget of a Txn, nested ones included, as etcd's `--max-txn-ops`; default 128. */
  maxTxnOps?: number;
  /** Most watchers on the node; default 10,000. */
  maxWatchers?: number;
  /** Most watchers on one stream; default 1,000. */
  maxWatchersPerStream?: number;
  /** Interval of watch progress notifications, in ms; default 10 min, as etcd. */
  progressNotifyMs?: number;
  /** Receives log events; default JSON lines on standard error. */
  log?: Log;
  /**
   * Serve Prometheus metrics at `http://HOST:PORT/metrics` on their own port, as etcd's
   * `--listen-metrics-urls`; off by default. Port 0 picks a free one.
   */
  metrics?: { host: string; port: number };
  /**
   * Run a full garbage collection once the thread has been idle for five seconds (longer while bursts
   * recur), if the heap grew by 24 MB since the last one and at most 150,000 keys are live, so that the
   * garbage of a burst of requests is given back then rather than 10 to 20 s later. Off by default
   * here, as the pause falls on whatever else the thread runs; on by default in `startLockdWorker`,
   * whose thread runs lockd alone.
   */
  collectWhenIdle?: boolean;
}

/** A running lockd node. */
export interface LockdServer {
  host: string;
  port: number;
  /** `host:port`, the form clients take. */
  endpoint: string;
  /** Database file, or `:memory:`. */
  dataPath: string;
  /** `host:port` of the metrics endpoint, if served. */
  metricsEndpoint: string | undefined;
  /**
   * Stops accepting calls, ends open ones after a grace of `graceMs` (default 2 s), commits what is
   * pending and closes the database. Safe to call twice; the second call waits for the first.
   */
  close(graceMs?: number): Promise<void>;
}

const stderrLog: Log = (event, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
};

/**
 * The KV service definition with lockd's own codecs for Range, Put, DeleteRange and Txn: requests decoded
 * with shared defaults (`kv-requests.ts`), answers written by hand (`kv-answers.ts`). A large answer,
 * encoded by the store in steps, comes framed (`grpc-frame.ts`): the encoder gives its message, for a
 * call that frames it again. Compact's requests and answers go through gRPC's loader as usual.
 */
function kvCodecs(definition: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const decoders = kvRequestDecoders();
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(definition)) {
    const ours = Object.hasOwn(decoders, name);
    const encode = ours
      ? (res: unknown) => encodeKvAnswer(name as KvAnswerMethod, res as object)
      : method.responseSerialize;
    out[name] = {
      ...method,
      requestDeserialize: ours ? decoders[name as KvRequestMethod] : method.requestDeserialize,
      responseSerialize: (res: unknown) => (res instanceof GrpcFrame ? res.message : encode(res)),
    };
  }
  return out;
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err
        ? reject(new LockdStartError(`cannot listen on ${address}: ${err.message}`, { cause: err }))
        : resolve(port),
    );
  });
}

/**
 * Starts a node and resolves once it listens. Rejects with `LockdStartError` (bad address, port in use)
 * or `LockdStorageError` (unusable database), having released what it opened. It takes no signal: it
 * only opens a file and binds a port, neither of which waits on anything. Every call starts a new node.
 */
export async function startLockdServer(options: LockdOptions = {}): Promise<LockdServer> {
  const log = options.log ?? stderrLog;
  const host = options.host ?? "127.0.0.1";
  let dataPath = ":memory:";
  if (!options.memory) {
    if (!options.dataDir) throw new LockdStartError("a data directory is required unless memory is set");
    mkdirSync(options.dataDir, { recursive: true });
    dataPath = join(options.dataDir, "lockd.db");
  }
  const maxRequestBytes = options.maxRequestBytes ?? 1.5 * 1024 * 1024;
  const store = new Store({
    path: dataPath,
    maxRequestBytes,
    quotaBytes: options.quotaBytes,
    maxTxnOps: options.maxTxnOps,
    sync: options.sync,
    onBroken: (err) => log("storage-broken", { error: String(err) }),
  });
  const hub = new WatchHub(options.maxWatchers ?? 10_000);
  const metrics = options.metrics ? new Metrics() : undefined;
  if (metrics)
    store.timings = { commit: (s) => metrics.commit.observe(s), fsync: (s) => metrics.fsync.observe(s) };
  const ctx: HandlerContext = { log, metrics };
  store.watched = () => hub.size > 0;
  store.onCommit = (revisions) => {
    try {
      hub.dispatch(revisions);
    } catch (err) {
      log("watch-dispatch-failed", {
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    }
  };

  const services = etcdServices();
  const kv = services.KV.service;
  const server = new grpc.Server({
    // Room for the gRPC framing around the largest request, as etcd allows.
    "grpc.max_receive_message_length": maxRequestBytes + 512 * 1024,
    // lockd serves no channelz: its bookkeeping (counters, timestamps) would only cost every call.
    "grpc.enable_channelz": 0,
    // The methods whose large answers the store encodes in steps, framed (see grpc-frame.ts).
    interceptors: [
      etcdHeaders,
      sendFramesAsTheyAre(
        ["Range", "DeleteRange"].map((m) => (kv[m] as grpc.MethodDefinition<unknown, unknown>).path),
      ),
    ],
  });
  let port = 0;
  const address = host.includes(":") ? `[${host}]` : host;
  server.addService(kvCodecs(kv), kvHandlers(store, ctx));
  server.addService(services.Lease.service, leaseHandlers(store, ctx));
  server.addService(
    services.Cluster.service,
    clusterHandlers(store, ctx, () => `http://${address}:${port}`),
  );
  server.addService(
    services.Maintenance.service,
    maintenanceHandlers(store, ctx, options.dataDir ?? tmpdir()),
  );
  server.addService(services.Auth.service, authHandlers(ctx));
  const limits = {
    perStream: options.maxWatchersPerStream ?? 1000,
    progressMs: options.progressNotifyMs ?? 600_000,
    maxQueued: 10_000,
  };
  server.addService(services.Watch.service, {
    Watch: ((call: grpc.ServerDuplexStream<never, never>) =>
      new WatchStream(call, store, hub, limits)) as never,
  });
  let metricsServer: HttpServer | undefined;
  let metricsEndpoint: string | undefined;
  try {
    port = await bind(server, `${address}:${options.port ?? 2379}`);
    if (metrics && options.metrics) {
      const gauges = {
        leases: () => store.leaseCount,
        watchers: () => hub.size,
        keys: () => store.keyCount,
        revision: () => store.rev,
      };
      const served = await serveMetrics(metrics, gauges, options.metrics.host, options.metrics.port);
      metricsServer = served.server;
      const h = options.metrics.host;
      metricsEndpoint = `${h.includes(":") ? `[${h}]` : h}:${served.port}`;
    }
  } catch (err) {
    server.forceShutdown();
    store.close();
    throw err;
  }

  const expiry = setInterval(() => {
    store.expireLeases().catch((err: unknown) => log("lease-expiry-failed", { error: String(err) }));
  }, 100);
  const collector = options.collectWhenIdle
    ? startIdleCollector(
        () => store.keyCount,
        (s) => metrics?.idleCollection.observe(s),
      )
    : undefined;
  const retention = options.retentionRevisions ?? 10_000n;
  const compaction = setInterval(() => {
    store.autoCompact(retention).catch((err: unknown) => log("compaction-failed", { error: String(err) }));
  }, options.compactIntervalMs ?? 10_000);

  let closing: Promise<void> | undefined;
  const close = (graceMs = 2000): Promise<void> => {
    closing ??= (async () => {
      clearInterval(expiry);
      clearInterval(compaction);
      collector?.stop();
      metricsServer?.closeAllConnections();
      metricsServer?.close();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      store.close();
    })();
    return closing;
  };
  return { host, port, endpoint: `${address}:${port}`, dataPath, metricsEndpoint, close };
}
