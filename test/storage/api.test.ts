/**
 * The current API (`/v1/...`) through the typed client, against an in-process server over real HTTP:
 * writes, reads, fences, audit, typed errors, abort and timeout, auth, /healthz, /metrics, timeouts.
 */
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test } from "node:test";
import {
  StaleTokenError,
  StorageAbortedError,
  StorageClient,
  StorageError,
  StorageRequestError,
  StorageTimeoutError,
  StorageUnavailableError,
} from "../../src/storage/index.js";
import { http, rawExchange, startInProcess } from "./helpers.js";

test("write and read bytes and strings; a missing key reads as null", async (t) => {
  const { url } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  assert.deepEqual(await c.write("a/b c", "text ☃", { token: 3n }), { maxToken: 3n });
  assert.deepEqual(await c.read("a/b c"), Buffer.from("text ☃"));
  const bytes = new Uint8Array([0, 255, 1, 254]);
  await c.write("bin", bytes, { token: 1n });
  assert.deepEqual(await c.read("bin"), Buffer.from(bytes));
  assert.equal(await c.read("nothing"), null);
  assert.equal(await c.fence("nothing"), null);
});

test("a stale token throws StaleTokenError with token, max and fence, and changes nothing", async (t) => {
  const { url } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  await c.write("k", "new", { token: 9223372036854775807n });
  const err = await c.write("k", "old", { token: 4703569812595502727n }).then(
    () => assert.fail("the stale write was accepted"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof StaleTokenError && err instanceof StorageError);
  assert.equal(err.code, "STALE_FENCING_TOKEN");
  assert.equal(err.name, "StaleTokenError");
  assert.equal(err.token, 4703569812595502727n);
  assert.equal(err.maxToken, 9223372036854775807n);
  assert.equal(err.fence, "k");
  assert.deepEqual(await c.read("k"), Buffer.from("new"));
  await assert.rejects(c.read("k", { token: 5n }), StaleTokenError, "a stale fenced read");
});

test("one fence guards many keys; a fenced read advances it", async (t) => {
  const { url } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  await c.write("x", "1", { token: 10n, fence: "/lock ☃" });
  assert.deepEqual(await c.read("x", { token: 12n, fence: "/lock ☃" }), Buffer.from("1"));
  await assert.rejects(c.write("y", "2", { token: 11n, fence: "/lock ☃" }), StaleTokenError);
  assert.equal(await c.fence("/lock ☃"), 12n);
  assert.equal(await c.fence("x"), null);
});

test("refusals are StorageRequestError with the registry code", async (t) => {
  const { url } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  const cases: [Promise<unknown>, string, number][] = [
    [c.write("k", "v"), "TOKEN_REQUIRED", 400],
    [c.write("k", "v", { token: 0n }), "BAD_REQUEST", 400],
    [c.write("k", "v", { token: -1n }), "BAD_REQUEST", 400],
    [c.write("k", "v", { token: 9223372036854775808n }), "BAD_REQUEST", 400],
    [c.write("", "v", { token: 1n }), "BAD_REQUEST", 400],
    [c.write("k".repeat(1025), "v", { token: 1n }), "PAYLOAD_TOO_LARGE", 413],
    [c.write("k", Buffer.alloc(1024 * 1024 + 1), { token: 1n }), "PAYLOAD_TOO_LARGE", 413],
  ];
  for (const [call, code, status] of cases) {
    const err = await call.then(
      () => assert.fail(`expected ${code}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof StorageRequestError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.status, status);
  }
  assert.equal(await c.read("k"), null, "nothing was written");
  assert.equal(await c.fence("k"), null);
});

test("a value of exactly the limit is accepted", async (t) => {
  const { url } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  const big = Buffer.alloc(1024 * 1024, 7);
  await c.write("big", big, { token: 1n });
  assert.deepEqual(await c.read("big"), big);
  await c.write("k".repeat(1024), "v", { token: 1n });
});

test("audit: every decision, tokens as bigint, value preview cut at a whole character, paging", async (t) => {
  const { url } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  const long = `${"a".repeat(255)}☃tail`; // the snowman's 3 bytes straddle byte 256
  await c.write("k", long, { token: 5n });
  await c.write("k", "old", { token: 4n }).catch(() => undefined);
  await c.read("k", { token: 6n });
  await c.read("k"); // unfenced read: no decision, no entry
  await c.write("k", "no token").catch(() => undefined);
  const all = await c.audit();
  assert.deepEqual(
    all.map((e) => [e.seq, e.op, e.key, e.fence, e.token, e.previousMax, e.accepted]),
    [
      [1, "write", "k", "k", 5n, null, true],
      [2, "write", "k", "k", 4n, 5n, false],
      [3, "read", "k", "k", 6n, 5n, true],
      [4, "write", "k", "k", null, 6n, false],
    ],
  );
  assert.equal(all[0]?.value, "a".repeat(255));
  assert.equal(all[1]?.value, "old");
  assert.equal(all[2]?.value, null);
  assert.match(all[1]?.reason ?? "", /stale/);
  assert.ok(Math.abs((all[0]?.timeMs ?? 0) - Date.now()) < 60_000);
  assert.deepEqual(
    (await c.audit({ after: 1, limit: 2 })).map((e) => e.seq),
    [2, 3],
  );
  await assert.rejects(
    c.audit({ limit: 1001 }),
    (e: unknown) => e instanceof StorageRequestError && e.code === "BAD_REQUEST",
  );
  await assert.rejects(c.audit({ after: -1 }), StorageRequestError);
});

test("abort, timeout and an unreachable server are distinct typed errors; listeners are removed", async (t) => {
  // A server that accepts connections and never answers.
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  t.after(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        silent.close(() => r());
      }),
  );
  const port = (silent.address() as { port: number }).port;
  const c = new StorageClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 300 });
  t.after(() => c.close());

  const timeout = await c.write("k", "v", { token: 1n }).catch((e: unknown) => e);
  assert.ok(timeout instanceof StorageTimeoutError);
  assert.equal(timeout.code, "STORAGE_TIMEOUT");
  assert.match(timeout.stack ?? "", /api\.test\.js/, "the stack points at the caller");

  const ac = new AbortController();
  let listeners = 0;
  const add = ac.signal.addEventListener.bind(ac.signal);
  const remove = ac.signal.removeEventListener.bind(ac.signal);
  ac.signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listeners++;
    add(...args);
  }) as typeof add;
  ac.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    listeners--;
    remove(...args);
  }) as typeof remove;
  const pending = c.read("k", { signal: ac.signal, timeoutMs: 10_000 });
  setTimeout(() => ac.abort(new Error("caller gave up")), 50);
  const aborted = await pending.catch((e: unknown) => e);
  assert.ok(aborted instanceof StorageAbortedError);
  assert.equal(aborted.code, "ABORTED");
  assert.equal((aborted.cause as Error).message, "caller gave up");
  assert.equal(listeners, 0, "the abort listener was removed");

  await assert.rejects(c.fence("f", { signal: AbortSignal.abort() }), StorageAbortedError, "already aborted");

  const closedPort = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const gone = new StorageClient({ url: `http://127.0.0.1:${closedPort}` });
  const err = await gone.write("k", "v", { token: 1n }).catch((e: unknown) => e);
  assert.ok(err instanceof StorageUnavailableError);
  assert.equal(err.code, "STORAGE_UNAVAILABLE");
  gone.close();
});

test("--auth-token: every route but /healthz needs the bearer token", async (t) => {
  const { url, port } = await startInProcess(t, { authToken: "s3cret" });
  const good = new StorageClient({ url, authToken: "s3cret" });
  const wrong = new StorageClient({ url, authToken: "guess" });
  const none = new StorageClient({ url });
  t.after(() => {
    good.close();
    wrong.close();
    none.close();
  });
  await good.write("k", "v", { token: 1n });
  for (const c of [wrong, none]) {
    const err = await c.write("k", "evil", { token: 2n }).catch((e: unknown) => e);
    assert.ok(err instanceof StorageRequestError && err.code === "UNAUTHORIZED" && err.status === 401);
    await assert.rejects(c.read("k"), StorageRequestError);
  }
  assert.equal((await http(port, "GET", "/healthz")).status, 200);
  const metrics = await http(port, "GET", "/metrics");
  assert.equal(metrics.status, 401);
  assert.match(String(metrics.headers["www-authenticate"]), /^Bearer/);
  const seedReply = await http(port, "POST", "/", {
    headers: { "Content-Type": "application/json", Authorization: "Bearer guess" },
    body: '{"op":"write","key":"k","val":"evil","version":3}',
  });
  assert.equal(seedReply.status, 401);
  assert.equal(seedReply.json?.code, "UNAUTHORIZED");
  assert.deepEqual(await good.read("k"), Buffer.from("v"));
  assert.equal(await good.fence("k"), 1n);
});

test("the bearer token must match byte for byte: no trailing NBSP or other Unicode space", async (t) => {
  const { port } = await startInProcess(t, { authToken: "s3cret" });
  const status = async (authorization: string) => {
    const reply = await rawExchange(
      port,
      Buffer.concat([
        Buffer.from("GET /v1/fences/f HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: "),
        Buffer.from(authorization, "latin1"),
        Buffer.from("\r\n\r\n"),
      ]),
      5000,
    );
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1]);
  };
  assert.equal(await status("Bearer s3cret"), 200);
  assert.equal(await status("bearer   s3cret"), 200, "the scheme is case-insensitive, spaces after it are");
  const nbspUtf8 = Buffer.from("\u00a0", "utf8").toString("latin1");
  const emSpaceUtf8 = Buffer.from("\u2003", "utf8").toString("latin1");
  for (const [what, value] of [
    ["a trailing NBSP (latin1 byte a0)", "Bearer s3cret\xa0"],
    ["a trailing NBSP (UTF-8 c2 a0)", `Bearer s3cret${nbspUtf8}`],
    ["a trailing em space (UTF-8)", `Bearer s3cret${emSpaceUtf8}`],
    ["a leading NBSP", "Bearer \xa0s3cret"],
    ["a prefix of the token", "Bearer s3cre"],
    ["the token and more", "Bearer s3cret2"],
    ["a comma-joined second header", "Bearer s3cret, Bearer s3cret"],
  ]) {
    assert.equal(await status(value as string), 401, what);
  }
});

test("/healthz and /metrics (Prometheus text: requests by route and status, decisions, latency)", async (t) => {
  const { url, port } = await startInProcess(t);
  const c = new StorageClient({ url });
  t.after(() => c.close());
  await c.write("k", "v", { token: 2n });
  await c.write("k", "v", { token: 1n }).catch(() => undefined);
  const health = await http(port, "GET", "/healthz");
  assert.deepEqual([health.status, health.json], [200, { status: "ok" }]);
  const m = await http(port, "GET", "/metrics");
  assert.equal(m.status, 200);
  assert.match(String(m.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  assert.match(m.text, /^fencelock_storage_requests_total\{route="kv",status="200"\} 1$/m);
  assert.match(m.text, /^fencelock_storage_requests_total\{route="kv",status="409"\} 1$/m);
  assert.match(m.text, /^fencelock_storage_decisions_total\{op="write",result="accepted"\} 1$/m);
  assert.match(m.text, /^fencelock_storage_decisions_total\{op="write",result="rejected"\} 1$/m);
  assert.match(m.text, /^fencelock_storage_request_duration_seconds_bucket\{route="kv",le="\+Inf"\} 2$/m);
  assert.match(m.text, /^fencelock_storage_request_duration_seconds_count\{route="kv"\} 2$/m);
  assert.match(m.text, /^# TYPE fencelock_storage_request_duration_seconds histogram$/m);
});

test("a client that stalls mid-headers or mid-body is cut off by the timeouts; the server keeps serving", async (t) => {
  const { port } = await startInProcess(t, { headersTimeoutMs: 400, requestTimeoutMs: 800 });
  const started = Date.now();
  const [headers, body] = await Promise.all([
    rawExchange(port, "PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nFencing-To", 8000),
    rawExchange(
      port,
      "PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nFencing-Token: 1\r\nContent-Length: 10\r\n\r\nabc",
      8000,
    ),
  ]);
  assert.ok(Date.now() - started < 7000, "both connections were closed by the server");
  assert.match(headers, /^HTTP\/1\.1 408/);
  assert.match(body, /^HTTP\/1\.1 408/);
  assert.equal((await http(port, "GET", "/healthz")).status, 200);
  assert.equal((await http(port, "GET", "/v1/kv/k")).status, 404, "the cut-off write changed nothing");
});
