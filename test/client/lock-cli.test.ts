/**
 * `fencelock lock` and `fencelock elect` as a shell script runs them: the real CLI as a child process, real
 * commands under it, on lockd and on a three-member etcd cluster; the session-loss paths by revoking the
 * lease from outside, by deleting the leader's key, and (on lockd) by SIGSTOPping fencelock past its TTL.
 * The timeout, bad-flag and freeze tests run on lockd only: they test fencelock, not the backend.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { connect, type LockClient } from "../../src/client/index.js";
import { CLI_PATH, startEtcdCluster, startLockd } from "../../src/testkit/index.js";
import { type RawEtcd, rawEtcd, until, within } from "./raw.js";
import type { Backend } from "./suite.js";

/**
 * A command (one node process, so SIGKILL leaves nothing behind) that prints its environment, reports
 * SIGTERM and then exits or ignores it, and exits with `code` once its standard input ends (never if
 * `code` is null). It also exits once its parent is gone, so a test that fails leaves no orphan.
 */
const command = (onTerm: "exit" | "ignore", code: number | null = 0) => [
  process.execPath,
  "-e",
  `console.log("env", process.env.FENCELOCK_TOKEN, process.env.FENCELOCK_KEY);
   process.on("SIGTERM", () => { console.log("term"); ${onTerm === "exit" ? "process.exit(0)" : ""} });
   const parent = process.ppid;
   setInterval(() => parent !== process.ppid && process.exit(1), 200);
   ${code === null ? "" : `process.stdin.resume().on("end", () => process.exit(${code}));`}`,
];

let names = 0;
const freshName = (what: string) => `/cli/${what}-${process.pid}-${++names}`;

function cliSuite(backend: string, start: () => Promise<Backend>, full: boolean): void {
  describe(`fencelock lock and elect on ${backend}`, () => {
    let server: Backend;
    let raw: RawEtcd;
    let c: LockClient;
    const children: ChildProcess[] = [];

    /** Starts `fencelock ARGS`; `out` is its stdout so far, `done` its exit code. */
    const cli = (args: string[]) => {
      const child = spawn(process.execPath, [CLI_PATH, ...args], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      children.push(child);
      const run = { child, out: "", err: "", done: Promise.resolve<number | null>(null) };
      child.stdout.on("data", (d: Buffer) => {
        run.out += d.toString();
      });
      child.stderr.on("data", (d: Buffer) => {
        run.err += d.toString();
      });
      run.done = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
      return run;
    };
    const flags = () => ["--endpoints", server.endpoints.join(",")];

    before(async () => {
      server = await start();
      raw = rawEtcd(server.endpoints);
      c = connect({ endpoints: server.endpoints });
    });

    after(async () => {
      for (const ch of children) {
        if (ch.exitCode === null && ch.signalCode === null) {
          ch.kill("SIGCONT");
          ch.kill("SIGKILL");
        }
      }
      await c?.close();
      raw?.close();
      await server?.stop();
    });

    it("lock runs the command holding the lock, with its token and key, and exits with its code", async () => {
      const name = freshName("lock");
      const run = cli(["lock", name, ...flags(), "--", ...command("exit", 7)]);
      await until("the command to start", () => run.out.includes("env"));
      const [key] = await raw.keys(name);
      assert.ok(key, "the lock is held while the command runs");
      assert.equal(run.out, `env ${key.createRevision} ${key.key}\n`);
      run.child.stdin.end();
      assert.equal(await within("fencelock to exit", run.done), 7);
      assert.deepEqual(await raw.keys(name), [], "unlocked after the command");
    });

    if (full)
      it("lock gives up after --timeout with its code and leaves no key; bad flags change nothing", async () => {
        const name = freshName("timeout");
        const s = await c.session({ ttl: 10 });
        const held = await s.mutex(name).lock();
        const run = cli(["lock", name, ...flags(), "--timeout", "300ms", "--", ...command("exit")]);
        run.child.stdin.end();
        assert.equal(await within("fencelock to give up", run.done), 124);
        assert.equal(run.out, "", "the command never ran");
        assert.deepEqual(
          (await raw.keys(name)).map((k) => k.key),
          [held.key],
        );
        const bad = [
          ["lock", name, ...flags(), "--ttl", "0", "--", "true"],
          ["lock", name, ...flags()],
          ["lock", ...flags(), "--", "true"],
          ["elect", name, ...flags(), "--listen", "--", "true"],
        ].map((args) => ({ args, run: cli(args) }));
        for (const { args, run: r } of bad) {
          assert.equal(await within("fencelock to refuse", r.done), 125, args.join(" "));
          assert.match(r.err, /--help/);
        }
        assert.equal((await raw.keys(name)).length, 1);
        const help = cli(["lock", "--help"]);
        assert.equal(await help.done, 0);
        assert.match(help.out, /121 {2}the session was lost/);
        await held.unlock();
        await s.close();
      });

    it("a revoked lease stops the command with SIGTERM, then SIGKILL after --grace, and exits 121", async () => {
      const name = freshName("revoked");
      const run = cli([
        "lock",
        name,
        ...flags(),
        "--ttl",
        "3",
        "--grace",
        "500ms",
        "--",
        ...command("ignore", null),
      ]);
      await until("the command to start", () => run.out.includes("env"));
      const [key] = await raw.keys(name);
      assert.ok(key);
      await raw.revoke(key.lease);
      assert.equal(await within("fencelock to stop the command", run.done), 121);
      assert.match(run.out, /\nterm\n/, "the command got SIGTERM first");
      assert.match(run.err, /stopping the command/);
    });

    if (full)
      it("fencelock frozen past its TTL stops its command once it runs again; the new holder is untouched", async () => {
        const name = freshName("frozen");
        const run = cli(["lock", name, ...flags(), "--ttl", "2", "--", ...command("exit", null)]);
        await until("the command to start", () => run.out.includes("env"));
        const s = await c.session({ ttl: 10 });
        const waiting = s.mutex(name).lock({ timeoutMs: 30_000 });
        await until("waiter queued", async () => (await raw.keys(name)).length === 2);
        run.child.kill("SIGSTOP");
        const lock = await within("the waiter to take over", waiting, 30_000);
        run.child.kill("SIGCONT");
        assert.equal(await within("fencelock to stop the command", run.done, 15_000), 121);
        assert.match(run.out, /\nterm\n/);
        assert.deepEqual(
          (await raw.keys(name)).map((k) => [k.key, k.createRevision]),
          [[lock.key, lock.token]],
          "the late unlock left the new holder's key alone",
        );
        await lock.unlock();
        await s.close();
      });

    it("elect runs the command while leader; elect --listen prints each leader like etcdctl elect -l", async () => {
      const name = freshName("elect");
      const listener = cli(["elect", name, ...flags(), "--listen"]);
      const s = await c.session({ ttl: 10 });
      const ours = await s.election(name).campaign("ours");
      await until("the listener to print our leader", () => listener.out === `${ours.key}\nours\n`);
      const run = cli(["elect", name, ...flags(), "--value", "theirs", "--", ...command("exit", 0)]);
      run.child.stdin.end();
      await until("the CLI candidate queued", async () => (await raw.keys(name)).length === 2);
      assert.equal(run.out, "", "it waits while we lead");
      await ours.resign();
      assert.equal(await within("the command to run and end", run.done), 0);
      const [, token, key] = run.out.trim().split(" ");
      assert.ok(BigInt(token as string) > ours.token);
      await until("the listener to print the CLI leader", () => listener.out.includes("theirs"));
      assert.equal(listener.out, `${ours.key}\nours\n${key}\ntheirs\n`);
      assert.deepEqual(await raw.keys(name), [], "resigned after the command");
      const deleted = cli(["elect", name, ...flags(), "--grace", "500ms", "--", ...command("exit", null)]);
      await until("the command to start", () => deleted.out.includes("env"));
      await raw.delete(deleted.out.trim().split(" ")[2] as string);
      assert.equal(await within("fencelock to stop the command", deleted.done), 121);
      listener.child.kill("SIGINT");
      assert.equal(await within("the listener to stop", listener.done), 0);
      await s.close();
    });
  });
}

cliSuite("lockd", () => startLockd(), true);
cliSuite("etcd", () => startEtcdCluster({ size: 3 }), false);
