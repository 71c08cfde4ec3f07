/**
 * etcd-only lock client tests: a killed leader, a killed member in use, and `etcdctl lock` on the same
 * lock in both directions. One three-member cluster for the file; the tests run in order and restore the
 * members they kill.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { connect, type LockClient } from "../../src/client/index.js";
import { type EtcdCluster, startEtcdCluster } from "../../src/testkit/index.js";
import { type RawEtcd, rawEtcd, until, within } from "./raw.js";

describe("lock client on etcd, with faults and etcdctl", () => {
  let cluster: EtcdCluster;
  let raw: RawEtcd;
  const clients: LockClient[] = [];
  const children: ChildProcess[] = [];
  const client = (endpoints = cluster.endpoints) => {
    const c = connect({ endpoints, callTimeoutMs: 3000 });
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await startEtcdCluster({ size: 3 });
    raw = rawEtcd(cluster.endpoints);
  });

  after(async () => {
    for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill("SIGKILL");
    await Promise.all(clients.map((c) => c.close()));
    raw?.close();
    await cluster?.stop();
  });

  it("tokens strictly increase across holders, also after the leader is killed", async () => {
    const c = client();
    const name = "/faults/leader";
    const a = await c.session({ ttl: 10 });
    const b = await c.session({ ttl: 10 });
    const tokens: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const l = await a.mutex(name).lock({ timeoutMs: 10_000 });
      tokens.push(l.token);
      await l.unlock();
    }
    const held = await a.mutex(name).lock({ timeoutMs: 10_000 });
    tokens.push(held.token);
    const waiting = b.mutex(name).lock({ timeoutMs: 30_000 });
    waiting.catch(() => {});
    await until("waiter queued", async () => (await raw.keys(name)).length === 2);
    const leader = await cluster.leaderIndex();
    assert.ok(leader >= 0, "a leader exists");
    await cluster.killMember(leader);
    await held.unlock();
    const next = await within("the waiter after the leader died", waiting, 30_000);
    tokens.push(next.token);
    await next.unlock();
    for (let i = 0; i < 3; i++) {
      const l = await (i % 2 ? a : b).mutex(name).lock({ timeoutMs: 10_000 });
      tokens.push(l.token);
      await l.unlock();
    }
    for (let i = 1; i < tokens.length; i++) {
      assert.ok(
        (tokens[i] as bigint) > (tokens[i - 1] as bigint),
        `token ${i} increases: ${tokens.join(",")}`,
      );
    }
    assert.ok(a.isLive() && b.isLive(), "the sessions survived the election");
    await Promise.all([a.close(), b.close()]);
    await cluster.restartMember(leader);
  });

  it("fails over when the member in use is killed: the session and its lock survive", async () => {
    const c = client();
    const name = "/faults/member";
    const s = await c.session({ ttl: 2 });
    const lock = await s.mutex(name).lock({ timeoutMs: 10_000 });
    const used = cluster.endpoints.indexOf(c.endpoint);
    assert.ok(used >= 0);
    await cluster.killMember(used);
    // Past the TTL: only keep-alives sent through another member can have kept the lease.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(lock.signal.aborted, false, `lock signal: ${String(lock.signal.reason)}`);
    assert.ok(s.isLive());
    assert.notEqual(c.endpoint, cluster.endpoints[used]);
    assert.deepEqual(
      (await raw.keys(name)).map((k) => k.createRevision),
      [lock.token],
    );
    await lock.unlock();
    const again = await s.mutex(name).lock({ timeoutMs: 10_000 });
    assert.ok(again.token > lock.token);
    await again.unlock();
    await s.close();
    await cluster.restartMember(used);
  });

  it("fails over when the member in use freezes (SIGSTOP) without closing its connections", async () => {
    const c = client();
    const name = "/faults/frozen-member";
    const s = await c.session({ ttl: 3 });
    const holder = await s.mutex(name).lock({ timeoutMs: 10_000 });
    const other = await c.session({ ttl: 10 });
    const waiting = other.mutex(name).lock({ timeoutMs: 30_000 });
    waiting.catch(() => {});
    await until("waiter queued", async () => (await raw.keys(name)).length === 2);
    const used = cluster.endpoints.indexOf(c.endpoint);
    const member = cluster.members[used];
    assert.ok(member?.child);
    member.child.pause();
    try {
      // Past the TTL: the keep-alive must have noticed the silence and moved to another member.
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal(holder.signal.aborted, false, `holder signal: ${String(holder.signal.reason)}`);
      await holder.unlock();
      // The waiter's watch, opened on the frozen member, must follow to the next one.
      const next = await within("the waiter after the freeze", waiting, 8_000);
      assert.ok(next.token > holder.token);
      await next.unlock();
    } finally {
      member.child.resume();
    }
    await Promise.all([s.close(), other.close()]);
  });

  const etcdctl = (args: string[]) => {
    const child = spawn("etcdctl", [`--endpoints=${cluster.endpoints.join(",")}`, ...args], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    const exited = new Promise<number | string>((resolve) =>
      child.once("exit", (code, sig) => resolve(code ?? sig ?? -1)),
    );
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
    return {
      child,
      exited,
      nextLine: async () => (await within("etcdctl output", lines.next(), 20_000)).value,
    };
  };

  it("excludes etcdctl lock holders, and waits behind them", async () => {
    const c = client();
    const name = "/faults/etcdctl-holds";
    const holder = etcdctl(["lock", name]);
    const key = await holder.nextLine();
    assert.match(String(key), new RegExp(`^${name}/[0-9a-f]+$`), "etcdctl prints its key");
    const s = await c.session({ ttl: 10 });
    assert.equal(await s.mutex(name).tryLock(), null, "etcdctl holds it");
    const waiting = s.mutex(name).lock({ timeoutMs: 30_000 });
    waiting.catch(() => {});
    await until("waiter queued", async () => (await raw.keys(name)).length === 2);
    const [theirs] = await raw.keys(name);
    assert.equal(theirs?.key, key);
    holder.child.kill("SIGINT");
    await within("etcdctl to exit", holder.exited);
    const lock = await within("our lock after etcdctl released", waiting, 30_000);
    assert.ok(lock.token > (theirs?.createRevision ?? 0n));
    await lock.unlock();
    await s.close();
  });

  it("makes etcdctl lock wait while we hold the lock", async () => {
    const c = client();
    const name = "/faults/we-hold";
    const s = await c.session({ ttl: 10 });
    const lock = await s.mutex(name).lock({ timeoutMs: 10_000 });
    const waiter = etcdctl(["lock", name, "--", "sh", "-c", "echo acquired $ETCD_LOCK_KEY"]);
    await until("etcdctl queued", async () => (await raw.keys(name)).length === 2);
    const [, theirs] = await raw.keys(name);
    let output: unknown;
    void waiter.nextLine().then((line) => {
      output = line;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(output, undefined, "etcdctl must not run its command while we hold the lock");
    assert.equal(waiter.child.exitCode, null);
    await lock.unlock();
    assert.equal(await within("etcdctl to finish", waiter.exited, 20_000), 0);
    await until("etcdctl output", () => output !== undefined, 5000);
    assert.equal(output, `acquired ${theirs?.key}`);
    assert.ok((theirs?.createRevision ?? 0n) > lock.token);
    await s.close();
  });
});
