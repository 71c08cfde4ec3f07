/**
 * lockd's metrics in the Prometheus text format, served on their own HTTP port (off unless asked, as
 * etcd's `--listen-metrics-urls`): requests by method and gRPC code, commit and WAL sync latency
 * histograms, and the current number of leases, watchers and keys.
 */
import { createServer, type Server } from "node:http";
import { status } from "@grpc/grpc-js";
import { LockdStartError } from "./errors.js";

/** Upper bounds of the latency buckets, in seconds: 1 ms doubling to 8 s, as etcd's disk histograms. */
const BUCKETS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);

/** A latency histogram with fixed buckets. */
export class Histogram {
  private readonly counts = new Array<number>(BUCKETS.length).fill(0);
  private total = 0;
  private sum = 0;

  /** Records one duration, in seconds. */
  observe(seconds: number): void {
    const i = BUCKETS.findIndex((b) => seconds <= b);
    if (i >= 0) (this.counts[i] as number)++;
    this.total++;
    this.sum += seconds;
  }

  /** The histogram's lines, cumulative as Prometheus wants them. */
  lines(name: string): string[] {
    const out: string[] = [];
    let cumulative = 0;
    BUCKETS.forEach((b, i) => {
      cumulative += this.counts[i] as number;
      out.push(`${name}_bucket{le="${b}"} ${cumulative}`);
    });
    out.push(
      `${name}_bucket{le="+Inf"} ${this.total}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.total}`,
    );
    return out;
  }
}

const CODE_NAMES = new Map(Object.entries(status).map(([name, code]) => [code as number, name]));

/** The current sizes the metrics report, read when scraped. */
export interface Gauges {
  leases(): number;
  watchers(): number;
  keys(): number;
  revision(): bigint;
}

/** The counters and histograms of one node. */
export class Metrics {
  /** Time of each SQLite commit (the write of its pages, a checkpoint included). */
  readonly commit = new Histogram();
  /** Time of each WAL sync (`--sync full`). */
  readonly fsync = new Histogram();
  /** Time of each full garbage collection run because the node went idle (`collectWhenIdle`). */
  readonly idleCollection = new Histogram();
  private readonly requests = new Map<string, number>();

  /** Counts one request of `method` answered with gRPC `code`. */
  request(method: string, code: status): void {
    const key = `method="${method}",code="${CODE_NAMES.get(code) ?? String(code)}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Everything, in the Prometheus text format (version 0.0.4). */
  render(gauges: Gauges): string {
    const lines = [
      "# HELP lockd_requests_total Requests answered, by gRPC method and status code.",
      "# TYPE lockd_requests_total counter",
      ...[...this.requests].sort().map(([labels, n]) => `lockd_requests_total{${labels}} ${n}`),
      "# HELP lockd_disk_backend_commit_duration_seconds Latency of SQLite commits.",
      "# TYPE lockd_disk_backend_commit_duration_seconds histogram",
      ...this.commit.lines("lockd_disk_backend_commit_duration_seconds"),
      "# HELP lockd_disk_wal_fsync_duration_seconds Latency of WAL syncs.",
      "# TYPE lockd_disk_wal_fsync_duration_seconds histogram",
      ...this.fsync.lines("lockd_disk_wal_fsync_duration_seconds"),
      "# HELP lockd_idle_gc_duration_seconds Pauses of the full collections run when the node went idle.",
      "# TYPE lockd_idle_gc_duration_seconds histogram",
      ...this.idleCollection.lines("lockd_idle_gc_duration_seconds"),
      "# HELP lockd_leases Leases granted and not expired or revoked.",
      "# TYPE lockd_leases gauge",
      `lockd_leases ${gauges.leases()}`,
      "# HELP lockd_watchers Watchers registered.",
      "# TYPE lockd_watchers gauge",
      `lockd_watchers ${gauges.watchers()}`,
      "# HELP lockd_keys Live keys.",
      "# TYPE lockd_keys gauge",
      `lockd_keys ${gauges.keys()}`,
      "# HELP lockd_revision The current revision.",
      "# TYPE lockd_revision gauge",
      `lockd_revision ${gauges.revision()}`,
    ];
    return `${lines.join("\n")}\n`;
  }
}

/**
 * Serves `GET /metrics` on `host:port` (0: a free port) and resolves with the server and its port once
 * it listens; rejects with `LockdStartError` if it cannot. Any other path is 404, any other method 405.
 */
export async function serveMetrics(
  metrics: Metrics,
  gauges: Gauges,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    } else if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
    } else {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(req.method === "HEAD" ? undefined : metrics.render(gauges));
    }
  });
  // Scrapes are small: no request needs more than a few seconds or a large header.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) =>
      reject(new LockdStartError(`cannot serve metrics on ${host}:${port}: ${err.message}`, { cause: err })),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : port };
}
