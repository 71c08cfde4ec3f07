/**
 * The server's counters and latency histogram, rendered in the Prometheus text exposition format
 * (version 0.0.4) at `/metrics`.
 */

/** Upper bounds of the latency histogram, in seconds. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++) {
      if (seconds <= (BUCKETS[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        return;
      }
    }
  }
}

/** The metrics of one server. */
export class Metrics {
  // Keyed by route, then status (and by op and result): counting a request builds no string.
  private readonly requests = new Map<string, Map<number, number>>();
  private readonly decisions = { read: [0, 0], write: [0, 0] };
  private readonly latency = new Map<string, Histogram>();

  /** Counts a finished request and its latency. */
  request(route: string, status: number, seconds: number): void {
    let byStatus = this.requests.get(route);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.requests.set(route, byStatus);
    }
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) {
      h = new Histogram();
      this.latency.set(route, h);
    }
    h.observe(seconds);
  }

  /** Counts a fencing decision. */
  decision(op: "read" | "write", accepted: boolean): void {
    const counts = this.decisions[op];
    counts[accepted ? 0 : 1] = (counts[accepted ? 0 : 1] as number) + 1;
  }

  /** The text served at `/metrics`. */
  render(): string {
    const out: string[] = [];
    out.push("# HELP fencelock_storage_requests_total HTTP requests by route and status.");
    out.push("# TYPE fencelock_storage_requests_total counter");
    for (const [route, byStatus] of this.requests) {
      for (const [status, n] of byStatus) {
        out.push(`fencelock_storage_requests_total{route="${route}",status="${status}"} ${n}`);
      }
    }
    out.push("# HELP fencelock_storage_decisions_total Fencing decisions by operation and result.");
    out.push("# TYPE fencelock_storage_decisions_total counter");
    for (const op of ["read", "write"] as const) {
      const [accepted, rejected] = this.decisions[op];
      // Only what happened, as before: a series appears with its first count.
      if (accepted) out.push(`fencelock_storage_decisions_total{op="${op}",result="accepted"} ${accepted}`);
      if (rejected) out.push(`fencelock_storage_decisions_total{op="${op}",result="rejected"} ${rejected}`);
    }
    out.push("# HELP fencelock_storage_request_duration_seconds Time from request to reply, by route.");
    out.push("# TYPE fencelock_storage_request_duration_seconds histogram");
    for (const [route, h] of this.latency) {
      let cumulative = 0;
      for (let i = 0; i < BUCKETS.length; i++) {
        cumulative += h.counts[i] as number;
        out.push(
          `fencelock_storage_request_duration_seconds_bucket{route="${route}",le="${BUCKETS[i]}"} ${cumulative}`,
        );
      }
      out.push(`fencelock_storage_request_duration_seconds_bucket{route="${route}",le="+Inf"} ${h.count}`);
      out.push(`fencelock_storage_request_duration_seconds_sum{route="${route}"} ${h.sum}`);
      out.push(`fencelock_storage_request_duration_seconds_count{route="${route}"} ${h.count}`);
    }
    out.push("# HELP process_resident_memory_bytes Resident memory of the server process.");
    out.push("# TYPE process_resident_memory_bytes gauge");
    out.push(`process_resident_memory_bytes ${process.memoryUsage.rss()}`);
    return `${out.join("\n")}\n`;
  }
}
