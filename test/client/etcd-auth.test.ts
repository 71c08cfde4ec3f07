/**
 * User/password auth against a real etcd with auth enabled: the token goes with every call, a wrong
 * password is a typed error, and an expired token (etcd started with `--auth-token-ttl 1`) is fetched
 * again without the caller noticing. One single-member cluster for the file.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { connect, EtcdAuthError, type LockClient } from "../../src/client/index.js";
import { type EtcdCluster, startEtcdCluster } from "../../src/testkit/index.js";

describe("lock client with etcd user/password auth", () => {
  let cluster: EtcdCluster;
  const clients: LockClient[] = [];
  const client = (auth?: { username: string; password: string }) => {
    const c = connect({ endpoints: cluster.endpoints, auth, callTimeoutMs: 3000 });
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await startEtcdCluster({ size: 1, extraArgs: ["--auth-token-ttl", "1"] });
    const etcdctl = (...args: string[]) =>
      execFileSync("etcdctl", [`--endpoints=${cluster.endpoints[0]}`, ...args], {
        env: { ...process.env, ETCDCTL_API: "3" },
        stdio: ["ignore", "pipe", "pipe"],
        timeout: 20_000,
      });
    etcdctl("user", "add", "root", "--new-user-password=s3cret");
    etcdctl("auth", "enable");
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await cluster?.stop();
  });

  it("locks with the right password, also after the token expired", async () => {
    const c = client({ username: "root", password: "s3cret" });
    const s = await c.session({ ttl: 5 });
    const first = await s.mutex("/auth").lock({ timeoutMs: 10_000 });
    await first.unlock();
    // Past the token's TTL (1 s, checked by etcd once a second): the next call gets "invalid auth token".
    await new Promise((r) => setTimeout(r, 2500));
    const second = await s.mutex("/auth").lock({ timeoutMs: 10_000 });
    assert.ok(second.token > first.token);
    await second.unlock();
    assert.ok(s.isLive());
    await s.close();
  });

  it("rejects a wrong password and a missing user with EtcdAuthError", async () => {
    await assert.rejects(
      client({ username: "root", password: "wrong" }).session({ ttl: 5 }),
      (err: unknown) => err instanceof EtcdAuthError && err.reason === "failed",
    );
    // etcd 3.4 grants leases to anyone; the lock's transaction is where a missing user is refused.
    const anonymous = await client().session({ ttl: 5 });
    await assert.rejects(anonymous.mutex("/auth").lock({ timeoutMs: 10_000 }), EtcdAuthError);
    await anonymous.close();
  });
});
