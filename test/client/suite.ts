/**
 * The lock client's tests that hold for any etcd v3 backend: `lockClientSuite("etcd", start)` and, once
 * lockd exists, `lockClientSuite("lockd", start)`. One backend per call, started in `before` and stopped in
 * `after`; every test makes its own client and lock name.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import {
  AbortedError,
  connect,
  InvalidArgumentError,
  type Lock,
  type LockClient,
  LockNotHeldError,
  LockReleasedError,
  type LockStatus,
  LockTimeoutError,
  SessionExpiredError,
} from "../../src/client/index.js";
import { tempDir } from "../../src/testkit/index.js";
import { aborted, type RawEtcd, rawEtcd, until, within } from "./raw.js";

/** What the suite needs of a backend. */
export interface Backend {
  endpoints: string[];
  stop(): Promise<void>;
}

const CONTENDER = new URL("./fixtures/contender.js", import.meta.url).pathname;

let names = 0;
/** A fresh lock name per test, so tests never see each other's keys. */
const freshName = (what: string) => `/test/${what}-${process.pid}-${++names}`;

/** Runs the backend-independent lock client tests against the backend `start` launches. */
export function lockClientSuite(backend: string, start: () => Promise<Backend>): void {
  describe(`lock client on ${backend}`, () => {
    let server: Backend;
    let raw: RawEtcd;
    const clients: LockClient[] = [];
    const client = () => {
      const c = connect({ endpoints: server.endpoints });
      clients.push(c);
      return c;
    };

    before(async () => {
      server = await start();
      raw = rawEtcd(server.endpoints);
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.close()));
      raw?.close();
      await server?.stop();
    });

    it("excludes many contenders in one process, with strictly increasing tokens", async () => {
      const c = client();
      const name = freshName("mutex");
      let inside = 0;
      let maxInside = 0;
      const tokens: bigint[] = [];
      const sessions = await Promise.all(Array.from({ length: 8 }, () => c.session({ ttl: 10 })));
      await Promise.all(
        sessions.map(async (s) => {
          for (let i = 0; i < 4; i++) {
            const lock = await s.mutex(name).lock({ timeoutMs: 30_000 });
            inside++;
            maxInside = Math.max(maxInside, inside);
            tokens.push(lock.token);
            await new Promise((r) => setTimeout(r, 2));
            inside--;
            await lock.unlock();
          }
        }),
      );
      assert.equal(maxInside, 1);
      assert.equal(tokens.length, 32);
      for (let i = 1; i < tokens.length; i++) assert.ok((tokens[i] as bigint) > (tokens[i - 1] as bigint));
      assert.deepEqual(await raw.keys(name), []);
      await Promise.all(sessions.map((s) => s.close()));
    });

    it("excludes contenders in separate processes", async () => {
      const name = freshName("procs");
      const dir = await tempDir("client-procs");
      try {
        const log = join(dir.path, "log");
        const children = Array.from({ length: 3 }, () =>
          spawn(process.execPath, [CONTENDER, "contend", server.endpoints.join(","), name, "4", log], {
            stdio: ["ignore", "ignore", "inherit"],
          }),
        );
        const codes = await within(
          "the contender processes",
          Promise.all(children.map((ch) => new Promise((resolve) => ch.once("exit", resolve)))),
          60_000,
        ).finally(() => {
          for (const ch of children) if (ch.exitCode === null) ch.kill("SIGKILL");
        });
        assert.deepEqual(codes, [0, 0, 0]);
        const lines = readFileSync(log, "utf8").trim().split("\n");
        assert.equal(lines.length, 24);
        let last = 0n;
        for (let i = 0; i < lines.length; i += 2) {
          const [enter, token, pid] = (lines[i] as string).split(" ");
          const [exit, token2, pid2] = (lines[i + 1] as string).split(" ");
          assert.equal(enter, "enter", `line ${i}: two holders at once`);
          assert.equal(exit, "exit", `line ${i + 1}: two holders at once`);
          assert.equal(token2, token);
          assert.equal(pid2, pid);
          assert.ok(BigInt(token as string) > last, "tokens strictly increase");
          last = BigInt(token as string);
        }
      } finally {
        await dir.remove();
      }
    });

    it("grants the lock in FIFO order of arrival", async () => {
      const c = client();
      const name = freshName("fifo");
      const holderSession = await c.session({ ttl: 10 });
      const holder = await holderSession.mutex(name).lock();
      const order: number[] = [];
      const waiters: Promise<void>[] = [];
      const sessions = await Promise.all(Array.from({ length: 5 }, () => c.session({ ttl: 10 })));
      for (const [i, s] of sessions.entries()) {
        waiters.push(
          s
            .mutex(name)
            .lock({ timeoutMs: 30_000 })
            .then(async (lock) => {
              order.push(i);
              await new Promise((r) => setTimeout(r, 10));
              await lock.unlock();
            }),
        );
        // The next waiter arrives only once this one is queued on the server.
        await until("waiter queued", async () => (await raw.keys(name)).length === i + 2);
      }
      await holder.unlock();
      await within("all waiters", Promise.all(waiters), 30_000);
      assert.deepEqual(order, [0, 1, 2, 3, 4]);
      await Promise.all([holderSession, ...sessions].map((s) => s.close()));
    });

    it("tryLock resolves to null under contention and to a lock when free", async () => {
      const c = client();
      const name = freshName("try");
      const a = await c.session({ ttl: 10 });
      const b = await c.session({ ttl: 10 });
      const held = await a.mutex(name).tryLock();
      assert.ok(held, "free lock is taken");
      assert.equal(await b.mutex(name).tryLock(), null);
      assert.equal(await a.mutex(name).tryLock(), null, "same session, same name: held locally");
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
        "the failed attempt left no key",
      );
      await held.unlock();
      const next = await b.mutex(name).tryLock();
      assert.ok(next && next.token > held.token);
      await next.unlock();
      await Promise.all([a.close(), b.close()]);
    });

    it("queues two lock() calls on one name through one session", async () => {
      const c = client();
      const name = freshName("local");
      const s = await c.session({ ttl: 10 });
      const first = await s.mutex(name).lock();
      let secondHeld = false;
      const second = s
        .mutex(name)
        .lock({ timeoutMs: 20_000 })
        .then((l) => {
          secondHeld = true;
          return l;
        });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(secondHeld, false, "the second call waits while the first holds");
      await first.unlock();
      const l2 = await within("second lock", second);
      assert.ok(l2.token > first.token, "a new key, a new token");
      await l2.unlock();
      await s.close();
    });

    it("a timed-out or aborted wait removes its waiter key before it rejects", async () => {
      const c = client();
      const name = freshName("cancel");
      const a = await c.session({ ttl: 10 });
      const b = await c.session({ ttl: 10 });
      const held = await a.mutex(name).lock();
      await assert.rejects(b.mutex(name).lock({ timeoutMs: 300 }), LockTimeoutError);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );

      const controller = new AbortController();
      const waiting = b.mutex(name).lock({ signal: controller.signal });
      await until("waiter queued", async () => (await raw.keys(name)).length === 2);
      controller.abort(new Error("changed my mind"));
      await assert.rejects(
        waiting,
        (err: unknown) => err instanceof AbortedError && err.cause instanceof Error,
      );
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );

      await assert.rejects(b.mutex(name).lock({ signal: AbortSignal.abort() }), AbortedError);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );
      await held.unlock();
      await Promise.all([a.close(), b.close()]);
    });

    it("a holder whose lease is revoked from outside sees its signal abort", async () => {
      const c = client();
      const s = await c.session({ ttl: 3 });
      const lock = await s.mutex(freshName("revoke")).lock();
      await raw.revoke(s.leaseId);
      const reason = await aborted(lock.signal, 10_000);
      assert.ok(reason instanceof SessionExpiredError);
      assert.equal(reason.reason, "revoked");
      assert.equal(s.isLive(), false);
      await lock.unlock();
      await s.close();
    });

    it("a waiter whose session ends stops with SessionExpiredError", async () => {
      const c = client();
      const name = freshName("waiter-ends");
      const a = await c.session({ ttl: 10 });
      const b = await c.session({ ttl: 3 });
      const held = await a.mutex(name).lock();
      const waiting = b.mutex(name).lock();
      await until("waiter queued", async () => (await raw.keys(name)).length === 2);
      await raw.revoke(b.leaseId);
      const err = await within(
        "the waiter to stop",
        waiting.then(
          () => undefined,
          (e: unknown) => e,
        ),
      );
      assert.ok(err instanceof SessionExpiredError, `got ${String(err)}`);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [held.key],
      );
      await held.unlock();
      await a.close();
    });

    it("a holder frozen past its TTL loses the lock, and its late unlock leaves the new holder alone", async () => {
      const name = freshName("frozen");
      const child = spawn(process.execPath, [CONTENDER, "hold", server.endpoints.join(","), name, "2"], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const c = client();
      const s = await c.session({ ttl: 10 });
      try {
        const lines = createInterface({ input: child.stdout });
        const messages = lines[Symbol.asyncIterator]();
        const next = async () =>
          JSON.parse(((await within("child output", messages.next(), 20_000)).value ?? "{}") as string);
        const locked = await next();
        assert.equal(locked.event, "locked");
        const waiting = s.mutex(name).lock({ timeoutMs: 30_000 });
        await until("waiter queued", async () => (await raw.keys(name)).length === 2);
        child.kill("SIGSTOP");
        const lock: Lock = await within("the waiter to take over", waiting, 30_000);
        assert.ok(lock.token > BigInt(locked.token));
        child.kill("SIGCONT");
        child.stdin.write("unlock\n");
        const signal = await next();
        assert.deepEqual(
          { live: signal.live, aborted: signal.aborted, reason: signal.reason },
          { live: false, aborted: true, reason: "expired" },
        );
        assert.equal((await next()).event, "unlocked");
        assert.deepEqual(
          (await raw.keys(name)).map((k) => [k.key, k.createRevision]),
          [[lock.key, lock.token]],
          "the new holder's key is untouched",
        );
        assert.equal(lock.signal.aborted, false);
        await lock.unlock();
      } finally {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
        await exited;
        await s.close();
      }
    });

    it("lock.txn writes only while the lock is held (the etcd guard)", async () => {
      const c = client();
      const name = freshName("guard");
      const data = `${name}-data`;
      const s = await c.session({ ttl: 10 });
      const lock = await s.mutex(name).lock();
      const res = await lock.txn([{ put: { key: data, value: "1" } }, { get: { key: data } }]);
      assert.ok(res.revision > lock.token);
      const got = res.results[1];
      assert.equal(got?.op, "get");
      assert.deepEqual(got?.op === "get" ? got.kvs.map((kv) => [kv.value.toString(), kv.modRevision]) : [], [
        ["1", res.revision],
      ]);
      await assert.rejects(lock.txn([{ put: { key: `${name}/x`, value: "" } }]), InvalidArgumentError);
      await assert.rejects(lock.txn([]), InvalidArgumentError);
      await raw.revoke(s.leaseId);
      await assert.rejects(lock.txn([{ put: { key: data, value: "2" } }]), LockNotHeldError);
      assert.equal(await raw.get(data), "1", "the refused transaction wrote nothing");
      await lock.unlock();
      await assert.rejects(lock.txn([{ delete: { key: data } }]), LockNotHeldError);
      assert.equal(await raw.get(data), "1");
    });

    it("a holder frozen past its TTL has its late guarded write refused; the new holder's stands", async () => {
      const name = freshName("guard-frozen");
      const data = `${name}-data`;
      const child = spawn(process.execPath, [CONTENDER, "hold", server.endpoints.join(","), name, "2"], {
        stdio: ["pipe", "pipe", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const s = await client().session({ ttl: 10 });
      try {
        const messages = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
        const next = async () =>
          JSON.parse(((await within("child output", messages.next(), 20_000)).value ?? "{}") as string);
        assert.equal((await next()).event, "locked");
        child.stdin.write(`put ${data} old-holder\n`);
        assert.deepEqual(await next(), { event: "txn", code: null });
        const waiting = s.mutex(name).lock({ timeoutMs: 30_000 });
        await until("waiter queued", async () => (await raw.keys(name)).length === 2);
        child.kill("SIGSTOP");
        const lock = await within("the waiter to take over", waiting, 30_000);
        await lock.txn([{ put: { key: data, value: "new-holder" } }]);
        child.kill("SIGCONT");
        child.stdin.write(`put ${data} late-write\n`);
        assert.deepEqual(await next(), { event: "txn", code: "LOCK_NOT_HELD" });
        assert.equal(await raw.get(data), "new-holder");
        await lock.unlock();
      } finally {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
        await exited;
        await s.close();
      }
    });

    it("a waiter says who holds the lock and when its lease expires; status() reads the same", async () => {
      const c = client();
      const name = freshName("status");
      const holderSession = await c.session({ ttl: 7 });
      const waiterSession = await c.session({ ttl: 10 });
      const held = await holderSession.mutex(name).lock();
      const reports: LockStatus[] = [];
      const waiting = waiterSession.mutex(name).lock({
        timeoutMs: 30_000,
        waitingAfterMs: 100,
        onWaiting: (status) => reports.push(status),
      });
      await until("a report", () => reports.length > 0);
      const report = reports[0] as LockStatus;
      assert.equal(report.name, name);
      assert.deepEqual(
        [report.holder?.key, report.holder?.token, report.holder?.leaseId, report.waiters],
        [held.key, held.token, holderSession.leaseId, 1],
      );
      assert.ok(report.holder?.ttlSeconds !== null && (report.holder?.ttlSeconds ?? 0) > 0);
      assert.ok((report.holder?.ttlSeconds ?? 99) <= 7);
      const status = await waiterSession.mutex(name).status();
      assert.deepEqual([status.holder?.key, status.waiters], [held.key, 1]);
      await held.unlock();
      const lock = await waiting;
      assert.equal((await waiterSession.mutex(name).status()).holder?.key, lock.key);
      await lock.unlock();
      assert.equal((await waiterSession.mutex(name).status()).holder, null);
      await holderSession.close();
      await waiterSession.close();
    });

    it("a lock timeout names the holder, and a holder key without a lease as one that never expires", async () => {
      const c = client();
      const name = freshName("leaseless");
      await raw.put(`${name}/orphan`, "");
      const s = await c.session({ ttl: 10 });
      const err = await s
        .mutex(name)
        .lock({ timeoutMs: 300 })
        .catch((e: unknown) => e);
      assert.ok(err instanceof LockTimeoutError, String(err));
      assert.deepEqual(
        [err.holder?.key, err.holder?.leaseId, err.holder?.ttlSeconds],
        [`${name}/orphan`, 0n, null],
      );
      assert.match(err.message, /no lease and never expires/);
      assert.deepEqual(
        (await raw.keys(name)).map((k) => k.key),
        [`${name}/orphan`],
        "the waiter's own key was removed",
      );
      await s.close();
    });

    it("withLock runs the function with a token and releases after, also when it throws", async () => {
      const c = client();
      const name = freshName("with");
      let seen: AbortSignal | undefined;
      const result = await c.withLock(
        name,
        async ({ token, key, signal }) => {
          assert.equal(typeof token, "bigint");
          assert.deepEqual(
            (await raw.keys(name)).map((k) => k.key),
            [key],
          );
          seen = signal;
          return 42;
        },
        { ttl: 5 },
      );
      assert.equal(result, 42);
      assert.ok(seen?.aborted && seen.reason instanceof LockReleasedError);
      assert.deepEqual(await raw.keys(name), []);
      await assert.rejects(
        c.withLock(name, () => {
          throw new RangeError("boom");
        }),
        RangeError,
      );
      assert.deepEqual(await raw.keys(name), []);
    });

    it("close() ends the session with reason closed, releases its locks, and is idempotent", async () => {
      const c = client();
      const name = freshName("close");
      const s = await c.session({ ttl: 10 });
      const lock = await s.mutex(name).lock();
      await Promise.all([s.close(), s.close()]);
      assert.ok(s.signal.reason instanceof SessionExpiredError);
      assert.equal(s.signal.reason.reason, "closed");
      assert.ok(lock.signal.aborted);
      assert.deepEqual(await raw.keys(name), [], "the revoke deleted the key");
      await lock.unlock();
      await assert.rejects(s.mutex(name).lock(), SessionExpiredError);
      await c.close();
      await c.close();
      await assert.rejects(c.session(), (e: unknown) => (e as { code?: string }).code === "CLIENT_CLOSED");
    });

    it("rejects bad input with InvalidArgumentError and changes nothing", async () => {
      const c = client();
      await assert.rejects(c.session({ ttl: 0 }), InvalidArgumentError);
      await assert.rejects(c.session({ ttl: 1.5 }), InvalidArgumentError);
      assert.throws(() => connect({ endpoints: ["not an endpoint"] }), InvalidArgumentError);
      assert.throws(() => connect({ endpoints: [] }), InvalidArgumentError);
      const s = await c.session({ ttl: 5 });
      assert.throws(() => s.mutex(""), InvalidArgumentError);
      await assert.rejects(s.mutex(freshName("bad")).lock({ timeoutMs: -1 }), InvalidArgumentError);
      await s.close();
    });
  });
}
