/**
 * lockd's Prometheus endpoint over real HTTP: off by default; requests counted by method and code; commit
 * and WAL sync histograms fed by real commits on a SQLite file; leases, watchers and keys as gauges.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type LockdServer, startLockdServer } from "../../src/lockd/index.js";
import type { LeaseGrantResponse } from "../../src/proto/index.js";
import { Raw, rpcError } from "./raw.js";

const b = (s: string) => Buffer.from(s);

describe("lockd /metrics", { timeout: 60_000 }, () => {
  let dir: string;
  let server: LockdServer;
  let raw: Raw;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "lockd-metrics-"));
    server = await startLockdServer({
      port: 0,
      dataDir: dir,
      metrics: { host: "127.0.0.1", port: 0 },
      log: () => {},
    });
    raw = new Raw(server.endpoint);
  });
  after(async () => {
    raw?.close();
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const scrape = async () => {
    const res = await fetch(`http://${server.metricsEndpoint}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    return res.text();
  };
  const value = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(`${series} `));
    assert.ok(line, `no ${series} in the metrics`);
    return Number(line.slice(series.length + 1));
  };

  test("off unless asked", async () => {
    const plain = await startLockdServer({ port: 0, memory: true, log: () => {} });
    try {
      assert.equal(plain.metricsEndpoint, undefined);
    } finally {
      await plain.close();
    }
  });

  test("requests by method and code, latency histograms, leases, watchers and keys", async () => {
    const empty = await scrape();
    assert.equal(value(empty, "lockd_keys"), 0);
    for (let i = 0; i < 3; i++) await raw.call("KV", "Put", { key: b(`/m/${i}`), value: b("v") });
    await raw.call("KV", "Range", { key: b("/m/0") });
    await rpcError(raw.call("KV", "Range", { key: Buffer.alloc(0) }));
    const lease = await raw.call<LeaseGrantResponse>("Lease", "LeaseGrant", { TTL: "30", ID: "0" });
    await raw.keepAliveOnce(lease.ID);
    const w = raw.watch();
    w.create({ key: b("/m/0") });
    await w.next();
    const text = await scrape();
    w.close();
    assert.equal(value(text, 'lockd_requests_total{method="Put",code="OK"}'), 3);
    assert.equal(value(text, 'lockd_requests_total{method="Range",code="OK"}'), 1);
    assert.equal(value(text, 'lockd_requests_total{method="Range",code="INVALID_ARGUMENT"}'), 1);
    assert.equal(value(text, 'lockd_requests_total{method="LeaseKeepAlive",code="OK"}'), 1);
    assert.equal(value(text, "lockd_keys"), 3);
    assert.equal(value(text, "lockd_leases"), 1);
    assert.equal(value(text, "lockd_watchers"), 1);
    assert.ok(value(text, "lockd_revision") >= 4);
    // Every write was committed and, with --sync full on a file, its WAL synced.
    const commits = value(text, "lockd_disk_backend_commit_duration_seconds_count");
    assert.ok(commits >= 4, `${commits} commits`);
    assert.equal(value(text, 'lockd_disk_backend_commit_duration_seconds_bucket{le="+Inf"}'), commits);
    assert.equal(value(text, "lockd_disk_wal_fsync_duration_seconds_count"), commits);
    assert.ok(value(text, "lockd_disk_wal_fsync_duration_seconds_sum") > 0);
  });

  test("other paths are 404, other methods 405", async () => {
    assert.equal((await fetch(`http://${server.metricsEndpoint}/`)).status, 404);
    const post = await fetch(`http://${server.metricsEndpoint}/metrics`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
  });
});
