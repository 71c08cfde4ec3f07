/**
 * The read-write lock's and the semaphore's tests that hold for any etcd v3 backend:
 * `rwlockSemaphoreSuite("lockd", start)`, `rwlockSemaphoreSuite("etcd", start)`. Includes the fault test:
 * a holder in another process frozen past its TTL loses its place, and its late release touches nothing.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import {
  connect,
  InvalidArgumentError,
  type Lock,
  type LockClient,
  LockTimeoutError,
  type Session,
  SessionExpiredError,
} from "../../src/client/index.js";
import { type RawEtcd, rawEtcd, until, within } from "./raw.js";
import type { Backend } from "./suite.js";

const HOLDER = new URL("./fixtures/prim-holder.js", import.meta.url).pathname;

let names = 0;
const freshName = (what: string) => `/test/${what}-${process.pid}-${++names}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the backend-independent read-write lock and semaphore tests against the backend `start` launches. */
export function rwlockSemaphoreSuite(backend: string, start: () => Promise<Backend>): void {
  describe(`read-write lock and semaphore on ${backend}`, () => {
    let server: Backend;
    let raw: RawEtcd;
    let c: LockClient;
    const sessions = (n: number) => Promise.all(Array.from({ length: n }, () => c.session({ ttl: 10 })));
    const closeAll = (list: Session[]) => Promise.all(list.map((s) => s.close()));

    before(async () => {
      server = await start();
      raw = rawEtcd(server.endpoints);
      c = connect({ endpoints: server.endpoints });
    });

    after(async () => {
      await c?.close();
      raw?.close();
      await server?.stop();
    });

    it("readers share, a writer excludes, and a reader behind a waiting writer waits for it", async () => {
      const name = freshName("rw");
      const [a, b, w, r] = (await sessions(4)) as [Session, Session, Session, Session];
      const ra = await a.rwlock(name).readLock();
      const rb = await within("a second reader alongside", b.rwlock(name).readLock());
      const events: string[] = [];
      const writer = w
        .rwlock(name)
        .writeLock({ timeoutMs: 30_000 })
        .then((l) => {
          events.push("writer");
          return l;
        });
      await until("writer queued", async () => (await raw.keys(name)).length === 3);
      const reader = r
        .rwlock(name)
        .readLock({ timeoutMs: 30_000 })
        .then((l) => {
          events.push("late reader");
          return l;
        });
      await until("late reader queued", async () => (await raw.keys(name)).length === 4);
      await ra.unlock();
      await sleep(200);
      assert.deepEqual(
        events,
        [],
        "the writer waits for every earlier reader; the late reader for the writer",
      );
      await rb.unlock();
      const wl = await within("the writer", writer);
      await sleep(200);
      assert.deepEqual(events, ["writer"], "the late reader waits while the writer holds");
      await wl.unlock();
      const rl = await within("the late reader", reader);
      assert.ok(ra.token < wl.token && rb.token < wl.token && wl.token < rl.token);
      await rl.unlock();
      assert.deepEqual(await raw.keys(name), []);
      await closeAll([a, b, w, r]);
    });

    it("never lets a writer in with anyone else, under mixed contention", async () => {
      const name = freshName("rw-mixed");
      const list = await sessions(6);
      let readers = 0;
      let writers = 0;
      let maxReaders = 0;
      const violations: string[] = [];
      await Promise.all(
        list.map(async (s, i) => {
          for (let round = 0; round < 3; round++) {
            const write = (i + round) % 3 === 0;
            const l = write
              ? await s.rwlock(name).writeLock({ timeoutMs: 30_000 })
              : await s.rwlock(name).readLock({ timeoutMs: 30_000 });
            if (write) writers++;
            else readers++;
            maxReaders = Math.max(maxReaders, readers);
            if (writers > 1 || (writers === 1 && readers > 0)) violations.push(`${writers}w ${readers}r`);
            await sleep(5);
            if (write) writers--;
            else readers--;
            await l.unlock();
          }
        }),
      );
      assert.deepEqual(violations, []);
      assert.ok(maxReaders >= 2, `readers held together (max ${maxReaders})`);
      assert.deepEqual(await raw.keys(name), []);
      await closeAll(list);
    });

    it("a semaphore admits at most `permits` holders, in arrival order, waking the head on a release", async () => {
      const name = freshName("sem");
      const list = await sessions(4);
      const [a, b, x, y] = list as [Session, Session, Session, Session];
      const pa = await a.semaphore(name, 2).acquire();
      const pb = await within("a second permit", b.semaphore(name, 2).acquire());
      const order: string[] = [];
      const take = (s: Session, who: string) =>
        s
          .semaphore(name, 2)
          .acquire({ timeoutMs: 30_000 })
          .then((p) => {
            order.push(who);
            return p;
          });
      const px = take(x, "x");
      await until("x queued", async () => (await raw.keys(`${name}/queue`)).length === 1);
      const py = take(y, "y");
      await until("y queued", async () => (await raw.keys(`${name}/queue`)).length === 2);
      await sleep(200);
      assert.deepEqual(order, [], "both wait while two hold");
      await pb.unlock();
      const hx = await within("x after a release", px);
      await sleep(200);
      assert.deepEqual(order, ["x"], "one release admits one waiter, the first");
      assert.equal((await raw.keys(`${name}/holders`)).length, 2);
      await pa.unlock();
      const hy = await within("y after the next release", py);
      assert.deepEqual(order, ["x", "y"]);
      assert.ok(hx.token > pb.token && hy.token > hx.token);
      await Promise.all([hx.unlock(), hy.unlock()]);
      assert.deepEqual(await raw.keys(`${name}/holders`), []);
      assert.deepEqual(await raw.keys(`${name}/queue`), []);
      await closeAll(list);
    });

    it("a timed-out semaphore or rwlock wait leaves no key; bad input is refused", async () => {
      const name = freshName("sem-timeout");
      const [a, b] = (await sessions(2)) as [Session, Session];
      const held = await a.semaphore(name, 1).acquire();
      await assert.rejects(b.semaphore(name, 1).acquire({ timeoutMs: 300 }), LockTimeoutError);
      assert.deepEqual(await raw.keys(`${name}/queue`), []);
      assert.deepEqual(
        (await raw.keys(`${name}/holders`)).map((k) => k.key),
        [held.key],
      );
      await held.unlock();
      const rw = freshName("rw-timeout");
      const reader = await a.rwlock(rw).readLock();
      await assert.rejects(b.rwlock(rw).writeLock({ timeoutMs: 300 }), LockTimeoutError);
      assert.deepEqual(
        (await raw.keys(rw)).map((k) => k.key),
        [reader.key],
      );
      await reader.unlock();
      assert.throws(() => a.semaphore(name, 0), InvalidArgumentError);
      assert.throws(() => a.semaphore(name, 1.5), InvalidArgumentError);
      assert.throws(() => a.rwlock(""), InvalidArgumentError);
      await closeAll([a, b]);
    });

    it("a waiter of either whose session ends stops with SessionExpiredError and leaves no key", async () => {
      const name = freshName("ends");
      const [a, b, d] = (await sessions(3)) as [Session, Session, Session];
      const writer = await a.rwlock(name).writeLock();
      const reader = b.rwlock(name).readLock();
      await until("reader queued", async () => (await raw.keys(name)).length === 2);
      const sem = freshName("ends-sem");
      const permit = await a.semaphore(sem, 1).acquire();
      const head = d.semaphore(sem, 1).acquire();
      await until("head queued", async () => (await raw.keys(`${sem}/queue`)).length === 1);
      await Promise.all([raw.revoke(b.leaseId), raw.revoke(d.leaseId)]);
      const errors = await within(
        "both waiters to stop",
        Promise.all(
          [reader, head].map((p) =>
            p.then(
              () => undefined,
              (e: unknown) => e,
            ),
          ),
        ),
      );
      for (const err of errors) assert.ok(err instanceof SessionExpiredError, String(err));
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [writer.key],
      );
      assert.deepEqual(await raw.keys(`${sem}/queue`), []);
      assert.deepEqual(
        (await raw.keys(`${sem}/holders`)).map((k) => k.key),
        [permit.key],
      );
      await Promise.all([writer.unlock(), permit.unlock()]);
      await a.close();
    });

    for (const mode of ["write", "sem"] as const) {
      it(`a ${mode === "sem" ? "semaphore holder" : "writer"} frozen past its TTL loses its place; its late release touches nothing`, async () => {
        const name = freshName(`frozen-${mode}`);
        const child = spawn(process.execPath, [HOLDER, mode, server.endpoints.join(","), name, "2", "1"], {
          stdio: ["pipe", "pipe", "inherit"],
        });
        const exited = new Promise((resolve) => child.once("exit", resolve));
        const s = await c.session({ ttl: 10 });
        try {
          const messages = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
          const next = async () =>
            JSON.parse(((await within("child output", messages.next(), 20_000)).value ?? "{}") as string);
          const held = await next();
          assert.equal(held.event, "held");
          const waiting: Promise<Lock> =
            mode === "sem"
              ? s.semaphore(name, 1).acquire({ timeoutMs: 30_000 })
              : s.rwlock(name).readLock({ timeoutMs: 30_000 });
          const queued = mode === "sem" ? `${name}/queue` : name;
          await until(
            "waiter queued",
            async () => (await raw.keys(queued)).length >= (mode === "sem" ? 1 : 2),
          );
          child.kill("SIGSTOP");
          const lock = await within("the waiter to take over", waiting, 30_000);
          assert.ok(lock.token > BigInt(held.token));
          child.kill("SIGCONT");
          child.stdin.write("unlock\n");
          assert.equal((await next()).event, "unlocked");
          const holders = mode === "sem" ? `${name}/holders` : name;
          assert.deepEqual(
            (await raw.keys(holders)).map((k) => [k.key, k.createRevision]),
            [[lock.key, lock.token]],
            "the new holder's key is untouched",
          );
          await lock.unlock();
        } finally {
          child.kill("SIGCONT");
          child.kill("SIGKILL");
          await exited;
          await s.close();
        }
      });
    }
  });
}
