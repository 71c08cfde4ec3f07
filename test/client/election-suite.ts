/**
 * The election's tests that hold for any etcd v3 backend, including interoperation with the real
 * `etcdctl elect` both ways: `electionSuite("lockd", start)`, `electionSuite("etcd", start)`.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import {
  AbortedError,
  connect,
  type LeaderInfo,
  type LockClient,
  LockTimeoutError,
  NoLeaderError,
  NotLeaderError,
  ResignedError,
  SessionExpiredError,
} from "../../src/client/index.js";
import { aborted, type RawEtcd, rawEtcd, until, within } from "./raw.js";
import type { Backend } from "./suite.js";

let names = 0;
const freshName = (what: string) => `/test/${what}-${process.pid}-${++names}`;

/** Collects what an observer reports until `count` changes were seen, or the signal aborts. */
async function collect(source: AsyncIterable<LeaderInfo>, out: string[]): Promise<unknown> {
  try {
    for await (const l of source) out.push(`${l.key}=${l.value.toString()}@${l.token}`);
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Runs the backend-independent election tests against the backend `start` launches. */
export function electionSuite(backend: string, start: () => Promise<Backend>): void {
  describe(`election on ${backend}`, () => {
    let server: Backend;
    let raw: RawEtcd;
    let c: LockClient;
    const children: ChildProcess[] = [];

    /** Runs `etcdctl elect ARGS`; `lines` collects its stdout lines as they come. */
    const etcdctl = (args: string[]) => {
      const child = spawn("etcdctl", ["--endpoints", server.endpoints.join(","), "elect", ...args], {
        env: { ...process.env, ETCDCTL_API: "3" },
        stdio: ["ignore", "pipe", "inherit"],
      });
      children.push(child);
      const lines: string[] = [];
      let partial = "";
      child.stdout.on("data", (d: Buffer) => {
        const parts = (partial + d.toString()).split("\n");
        partial = parts.pop() ?? "";
        lines.push(...parts);
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      return { child, lines, exited };
    };

    before(async () => {
      server = await start();
      raw = rawEtcd(server.endpoints);
      c = connect({ endpoints: server.endpoints });
    });

    after(async () => {
      for (const ch of children) if (ch.exitCode === null && ch.signalCode === null) ch.kill("SIGKILL");
      await c?.close();
      raw?.close();
      await server?.stop();
    });

    it("elects candidates in FIFO order, each with a larger token; leader() and resign() follow", async () => {
      const name = freshName("elect");
      const sessions = await Promise.all(Array.from({ length: 4 }, () => c.session({ ttl: 10 })));
      const [s0, ...rest] = sessions as [(typeof sessions)[0], ...typeof sessions];
      await assert.rejects(s0.election(name).leader(), NoLeaderError);
      const first = await s0.election(name).campaign("v0");
      assert.equal(first.key, s0.election(name).key);
      assert.deepEqual(await raw.keys(name), [
        { key: first.key, createRevision: first.token, lease: s0.leaseId },
      ]);
      const order: number[] = [];
      const campaigns: Promise<bigint>[] = [];
      for (const [i, s] of rest.entries()) {
        campaigns.push(
          s
            .election(name)
            .campaign(`v${i + 1}`, { timeoutMs: 30_000 })
            .then(async (l) => {
              order.push(i + 1);
              const now = await s.election(name).leader();
              assert.deepEqual([now.key, now.value.toString(), now.token], [l.key, `v${i + 1}`, l.token]);
              await new Promise((r) => setTimeout(r, 10));
              await l.resign();
              return l.token;
            }),
        );
        // The next candidate starts only once this one is queued on the server, so arrival order is known.
        await until("candidate queued", async () => (await raw.keys(name)).length >= i + 2);
      }
      const leader = await s0.election(name).leader();
      assert.deepEqual([leader.key, leader.value.toString(), leader.token], [first.key, "v0", first.token]);
      const signal = first.signal;
      await first.resign();
      assert.ok(signal.reason instanceof ResignedError);
      const tokens = await within("every candidate to lead in turn", Promise.all(campaigns), 30_000);
      assert.deepEqual(order, [1, 2, 3]);
      assert.ok(first.token < (tokens[0] as bigint));
      assert.ok(
        (tokens[0] as bigint) < (tokens[1] as bigint) && (tokens[1] as bigint) < (tokens[2] as bigint),
      );
      assert.deepEqual(await raw.keys(name), []);
      await Promise.all(sessions.map((s) => s.close()));
    });

    it("proclaim changes the value only while leading; the signal aborts when leadership is lost", async () => {
      const name = freshName("proclaim");
      const s = await c.session({ ttl: 10 });
      const l = await s.election(name).campaign("a");
      await l.proclaim("b");
      assert.equal(await raw.get(l.key), "b");
      const signal = l.signal;
      // Someone else deletes the leader's key (an operator, `etcdctl del`): leadership is gone.
      await raw.delete(l.key);
      assert.ok((await aborted(signal)) instanceof NotLeaderError);
      await assert.rejects(l.proclaim("c"), NotLeaderError);
      assert.equal(await raw.get(l.key), undefined, "the refused proclaim wrote nothing");
      await l.resign();

      const l2 = await s.election(name).campaign("d");
      const signal2 = l2.signal;
      await raw.revoke(s.leaseId);
      // Whichever the client sees first: the key's deletion, or the keep-alive's answer.
      const reason = await aborted(signal2);
      assert.ok(reason instanceof NotLeaderError || reason instanceof SessionExpiredError, String(reason));
      assert.ok((await aborted(s.signal)) instanceof SessionExpiredError, "the session learns it too");
      await assert.rejects(l2.proclaim("e"), NotLeaderError);
      assert.deepEqual(await raw.keys(name), []);
      await l2.resign();
    });

    it("a timed-out, aborted or session-ended campaign removes its key before it rejects", async () => {
      const name = freshName("cancel");
      const a = await c.session({ ttl: 10 });
      const b = await c.session({ ttl: 10 });
      const held = await a.election(name).campaign("a");
      await assert.rejects(b.election(name).campaign("b", { timeoutMs: 300 }), LockTimeoutError);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );
      const controller = new AbortController();
      const waiting = b.election(name).campaign("b", { signal: controller.signal });
      await until("candidate queued", async () => (await raw.keys(name)).length === 2);
      controller.abort(new Error("changed my mind"));
      await assert.rejects(waiting, AbortedError);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );
      const ending = b.election(name).campaign("b");
      await until("candidate queued", async () => (await raw.keys(name)).length === 2);
      await raw.revoke(b.leaseId);
      const err = await within(
        "the campaign to stop",
        ending.then(
          () => undefined,
          (e: unknown) => e,
        ),
      );
      assert.ok(err instanceof SessionExpiredError, `got ${String(err)}`);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );
      await held.resign();
      await a.close();
    });

    it("observe reports each leader and each proclaimed value once, in order", async () => {
      const name = freshName("observe");
      const a = await c.session({ ttl: 10 });
      const b = await c.session({ ttl: 10 });
      const controller = new AbortController();
      const seen: string[] = [];
      const observing = collect(a.election(name).observe({ signal: controller.signal }), seen);
      const la = await a.election(name).campaign("a1");
      await until("the first leader observed", () => seen.length === 1);
      const waiting = b.election(name).campaign("b1");
      await until("candidate queued", async () => (await raw.keys(name)).length === 2);
      await la.proclaim("a2");
      await b.election(name).leader(); // a candidate's arrival is no change of leader
      await la.resign();
      const lb = await within("b to lead", waiting);
      await lb.proclaim("b2");
      await lb.resign();
      const la2 = await a.election(name).campaign("a3");
      await until("every change observed", () => seen.length === 5);
      // A late observer starts with the leader now.
      const late: string[] = [];
      const lateController = new AbortController();
      const lateObserving = collect(b.election(name).observe({ signal: lateController.signal }), late);
      await until("the late observer", () => late.length === 1);
      lateController.abort();
      assert.ok((await lateObserving) instanceof AbortedError);
      controller.abort();
      assert.ok((await observing) instanceof AbortedError);
      assert.deepEqual(seen, [
        `${la.key}=a1@${la.token}`,
        `${la.key}=a2@${la.token}`,
        `${lb.key}=b1@${lb.token}`,
        `${lb.key}=b2@${lb.token}`,
        `${la2.key}=a3@${la2.token}`,
      ]);
      assert.deepEqual(late, [`${la2.key}=a3@${la2.token}`]);
      await la2.resign();
      await Promise.all([a.close(), b.close()]);
    });

    it("interoperates with etcdctl elect both ways", async () => {
      const name = freshName("etcdctl");
      const s = await c.session({ ttl: 10 });
      const ours = await s.election(name).campaign("ours");
      const listener = etcdctl(["-l", name]);
      await until("etcdctl elect -l to print our leader", () => listener.lines.length >= 2, 15_000);
      assert.deepEqual(listener.lines.slice(0, 2), [ours.key, "ours"]);
      const theirs = etcdctl([name, "theirs"]);
      await until("etcdctl to queue", async () => (await raw.keys(name)).length === 2, 15_000);
      assert.deepEqual(theirs.lines, [], "etcdctl waits while we lead");
      await ours.proclaim("ours-2");
      await ours.resign();
      await until("etcdctl to lead", () => theirs.lines.length >= 2, 15_000);
      const theirKey = String(theirs.lines[0]);
      assert.deepEqual(theirs.lines.slice(0, 2), [theirKey, "theirs"]);
      const leader = await s.election(name).leader();
      assert.deepEqual([leader.key, leader.value.toString()], [theirKey, "theirs"]);
      // Now we wait behind etcdctl, which resigns on SIGINT.
      const waiting = s.election(name).campaign("ours-3", { timeoutMs: 30_000 });
      await until("our candidate queued", async () => (await raw.keys(name)).length === 2);
      theirs.child.kill("SIGINT");
      const again = await within("us to lead again", waiting, 30_000);
      assert.ok(again.token > leader.token);
      await until("etcdctl elect -l to print every change", () => listener.lines.length >= 8, 15_000);
      assert.deepEqual(listener.lines.slice(0, 8), [
        ours.key,
        "ours",
        ours.key,
        "ours-2",
        theirKey,
        "theirs",
        again.key,
        "ours-3",
      ]);
      listener.child.kill("SIGINT");
      await within("etcdctl to exit", Promise.all([theirs.exited, listener.exited]));
      await again.resign();
      await s.close();
    });
  });
}
