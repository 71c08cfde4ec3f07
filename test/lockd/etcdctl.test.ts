/**
 * The real `etcdctl` (3.4) against lockd: every command a lock user needs, checked by its printed output.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { type LockdInstance, startLockd } from "../../src/testkit/index.js";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe("etcdctl against lockd", { timeout: 60_000 }, () => {
  let lockd: LockdInstance;
  const children: ChildProcess[] = [];
  const env = { ...process.env, ETCDCTL_API: "3" };

  const ctl = (args: string[], input?: string): Promise<Result> =>
    new Promise((resolve) => {
      const child = execFile(
        "etcdctl",
        ["--endpoints", lockd.endpoint, "--dial-timeout", "3s", "--command-timeout", "5s", ...args],
        { env, timeout: 10_000 },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
          resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
        },
      );
      if (input !== undefined) child.stdin?.end(input);
    });

  /** Starts a long-running etcdctl and resolves with it once it has printed `lines` lines. */
  const background = (args: string[], lines: number, timeoutMs = 10_000) => {
    const child = spawn("etcdctl", ["--endpoints", lockd.endpoint, ...args], { env });
    children.push(child);
    let out = "";
    const seen = new Promise<string>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`etcdctl ${args.join(" ")}: got only ${JSON.stringify(out)}`)),
        timeoutMs,
      );
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.split("\n").filter(Boolean).length >= lines) {
          clearTimeout(t);
          resolve(out);
        }
      });
    });
    return { child, seen, output: () => out };
  };

  before(async () => {
    lockd = await startLockd();
  });
  after(async () => {
    for (const c of children) c.kill("SIGKILL");
    await lockd?.stop();
  });

  test("put, get (prefix, rev, json), del", async () => {
    assert.equal((await ctl(["put", "/ctl/a", "1"])).stdout, "OK\n");
    await ctl(["put", "/ctl/b", "2"]);
    await ctl(["put", "/ctl/a", "3"]);
    assert.equal((await ctl(["get", "--prefix", "/ctl/"])).stdout, "/ctl/a\n3\n/ctl/b\n2\n");
    const json = JSON.parse((await ctl(["get", "/ctl/a", "-w", "json"])).stdout);
    const kv = json.kvs[0];
    assert.equal(Buffer.from(kv.value, "base64").toString(), "3");
    assert.equal(kv.version, 2);
    assert.equal(kv.mod_revision, json.header.revision);
    const old = await ctl(["get", "/ctl/a", "--rev", String(kv.create_revision)]);
    assert.equal(old.stdout, "/ctl/a\n1\n");
    assert.equal(
      (await ctl(["get", "--prefix", "/ctl/", "--keys-only", "--limit", "1"])).stdout,
      "/ctl/a\n\n",
    );
    assert.equal((await ctl(["del", "--prefix", "/ctl/"])).stdout, "2\n");
    assert.equal((await ctl(["get", "--prefix", "/ctl/"])).stdout, "");
    const future = await ctl(["get", "/ctl/a", "--rev", "99999999"]);
    assert.notEqual(future.code, 0);
    assert.match(future.stderr, /required revision is a future revision/);
  });

  test("txn -i from stdin: success and failure branches", async () => {
    await ctl(["put", "/ctl/t", "x"]);
    const ok = await ctl(["txn", "-i"], 'value("/ctl/t") = "x"\n\nput /ctl/t2 yes\n\nput /ctl/t2 no\n\n');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /\nSUCCESS\n\nOK\n$/);
    assert.equal((await ctl(["get", "/ctl/t2", "--print-value-only"])).stdout, "yes\n");
    const no = await ctl(["txn", "-i"], 'value("/ctl/t") = "y"\n\nput /ctl/t2 yes\n\nput /ctl/t2 no\n\n');
    assert.match(no.stdout, /\nFAILURE\n\nOK\n$/);
    assert.equal((await ctl(["get", "/ctl/t2", "--print-value-only"])).stdout, "no\n");
  });

  test("lease grant, put --lease, timetolive --keys, keep-alive --once, revoke", async () => {
    const grant = await ctl(["lease", "grant", "30"]);
    const m = /^lease ([0-9a-f]+) granted with TTL\(30s\)\n$/.exec(grant.stdout);
    assert.ok(m, grant.stdout + grant.stderr);
    const id = m[1] as string;
    await ctl(["put", "/ctl/leased", "v", "--lease", id]);
    const ttl = await ctl(["lease", "timetolive", id, "--keys"]);
    assert.match(
      ttl.stdout,
      new RegExp(
        `^lease ${id} granted with TTL\\(30s\\), remaining\\(\\d+s\\), attached keys\\(\\[/ctl/leased\\]\\)`,
      ),
    );
    assert.equal(
      (await ctl(["lease", "keep-alive", "--once", id])).stdout,
      `lease ${id} keepalived with TTL(30)\n`,
    );
    assert.match((await ctl(["lease", "list"])).stdout, new RegExp(id));
    assert.equal((await ctl(["lease", "revoke", id])).stdout, `lease ${id} revoked\n`);
    assert.equal((await ctl(["get", "/ctl/leased"])).stdout, "");
    assert.equal((await ctl(["lease", "timetolive", id])).stdout, `lease ${id} already expired\n`);
    const again = await ctl(["lease", "revoke", id]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /requested lease not found/);
  });

  test("watch: live and from a past revision", async () => {
    const r = JSON.parse((await ctl(["put", "/ctl/w/a", "1", "-w", "json"])).stdout).header
      .revision as number;
    await ctl(["put", "/ctl/w/b", "2"]);
    // The two past puts arrive first; then a live delete (8 non-empty lines in all).
    const w = background(["watch", "--prefix", "/ctl/w/", "--rev", String(r)], 8);
    await new Promise((res) => setTimeout(res, 300));
    await ctl(["del", "/ctl/w/a"]);
    const out = await w.seen;
    // The blank line etcdctl prints after each event may come in a later chunk than the event.
    assert.deepEqual(out.split("\n").filter(Boolean), [
      "PUT",
      "/ctl/w/a",
      "1",
      "PUT",
      "/ctl/w/b",
      "2",
      "DELETE",
      "/ctl/w/a",
    ]);
    w.child.kill("SIGKILL");
  });

  test("lock: a second etcdctl lock waits until the first holder leaves", async () => {
    const first = background(["lock", "/ctl/lock"], 1);
    const key1 = (await first.seen).trim();
    assert.match(key1, /^\/ctl\/lock\/[0-9a-f]+$/);
    const second = background(["lock", "/ctl/lock"], 1);
    await new Promise((res) => setTimeout(res, 700));
    assert.equal(second.output(), "", "the second holder must wait");
    first.child.kill("SIGINT");
    const key2 = (await second.seen).trim();
    assert.match(key2, /^\/ctl\/lock\/[0-9a-f]+$/);
    assert.notEqual(key2, key1);
    second.child.kill("SIGINT");
  });

  test("endpoint status and member list", async () => {
    const status = JSON.parse((await ctl(["endpoint", "status", "-w", "json"])).stdout)[0];
    assert.equal(status.Endpoint, lockd.endpoint);
    assert.equal(status.Status.leader, status.Status.header.member_id);
    assert.ok(status.Status.dbSize > 0);
    const members = await ctl(["member", "list"]);
    assert.match(
      members.stdout,
      new RegExp(`^[0-9a-f]+, started, lockd, , http://${lockd.endpoint}, false\\n$`),
    );
    const health = await ctl(["endpoint", "health"]);
    assert.match(health.stdout + health.stderr, /is healthy/);
  });
});
