/**
 * etcd-only election test: an observer whose member is killed resumes on the next member from the last
 * revision it saw, and reports every change made meanwhile exactly once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AbortedError, connect, type LockClient } from "../../src/client/index.js";
import { type EtcdCluster, startEtcdCluster } from "../../src/testkit/index.js";
import { until, within } from "./raw.js";

describe("election observe on etcd, across a killed member", () => {
  let cluster: EtcdCluster;
  const clients: LockClient[] = [];

  before(async () => {
    cluster = await startEtcdCluster({ size: 3 });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await cluster?.stop();
  });

  it("misses and repeats no change while it fails over", async () => {
    const observer = connect({ endpoints: cluster.endpoints, callTimeoutMs: 3000 });
    clients.push(observer);
    const used = cluster.endpoints.indexOf(observer.endpoint);
    // The candidates talk to the members that stay up.
    const others = cluster.endpoints.filter((_, i) => i !== used);
    const candidates = connect({ endpoints: others, callTimeoutMs: 3000 });
    clients.push(candidates);
    const name = "/failover/election";
    const controller = new AbortController();
    const seen: string[] = [];
    const observing = (async () => {
      const s = await observer.session({ ttl: 10 });
      try {
        for await (const l of s.election(name).observe({ signal: controller.signal })) {
          seen.push(`${l.value.toString()}@${l.token}`);
        }
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    const a = await candidates.session({ ttl: 10 });
    const b = await candidates.session({ ttl: 10 });
    const la = await a.election(name).campaign("a1");
    await until("the first leader observed", () => seen.length === 1);
    await cluster.killMember(used);
    const waiting = b.election(name).campaign("b1");
    await la.proclaim("a2");
    await la.resign();
    const lb = await within("b to lead", waiting);
    await lb.proclaim("b2");
    await until("every change observed after the failover", () => seen.length >= 4, 30_000);
    // A moment for a repeat to show up, if the resumed watch started too early.
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    assert.ok((await observing) instanceof AbortedError);
    assert.deepEqual(seen, [`a1@${la.token}`, `a2@${la.token}`, `b1@${lb.token}`, `b2@${lb.token}`]);
    assert.notEqual(observer.endpoint, cluster.endpoints[used], "the observer moved on");
    await lb.resign();
    await Promise.all([a.close(), b.close()]);
    await cluster.restartMember(used);
  });
});
