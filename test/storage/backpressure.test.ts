/**
 * Memory under abuse, on a real storage child process (durable, with a bearer token) and real sockets:
 * a client that pipelines GETs of a 1 MiB value and never reads the replies, and clients that flood
 * requests without the token and never read. The server's peak resident memory (VmHWM in
 * /proc/<pid>/status) must stay under 150 MB, and other clients must be served meanwhile. The
 * hand-written parser this replaced went from 54 to 661 MiB on the first and 58 to 296 MiB on the
 * second (issue 12).
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { StorageClient } from "../../src/storage/index.js";
import { processMemoryMb, type StorageHandle, startStorage } from "../../src/testkit/index.js";

const TOKEN = "backpressure-token";
const LIMIT_MB = 150;
const MiB = 1024 * 1024;
const FLOODERS = 6;

/** Opens a socket that never reads: no `data` listener, so the kernel buffers fill and TCP stalls. */
function openSilent(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.pause();
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/**
 * While the abuse goes on (its sockets stay open and unread until the test ends), a well-behaved client
 * keeps being served: fenced writes and reads, each answered within 5 s (else the client's timeout
 * fails the test), for `durationMs` and at least 3 round trips. Resolves with how many were made.
 */
async function servedMeanwhile(storage: StorageHandle, durationMs: number): Promise<number> {
  const client = new StorageClient({ url: storage.url, authToken: TOKEN, timeoutMs: 5000 });
  try {
    let rounds = 0;
    const deadline = Date.now() + durationMs;
    for (let token = 1; (token <= 3 || Date.now() < deadline) && token <= 1000; token++) {
      await client.write("meanwhile", `v${token}`, { token: BigInt(token) });
      assert.equal((await client.read("meanwhile"))?.toString(), `v${token}`);
      rounds++;
      await new Promise((r) => setTimeout(r, 50));
    }
    return rounds;
  } finally {
    client.close();
  }
}

test("300 pipelined GETs of a 1 MiB value that are never read keep the server under 150 MB", async (t) => {
  const storage = await startStorage({ authToken: TOKEN });
  t.after(() => storage.stop());
  const client = new StorageClient({ url: storage.url, authToken: TOKEN, timeoutMs: 10_000 });
  t.after(() => client.close());
  await client.write("big", Buffer.alloc(MiB, 0x61), { token: 1n });
  const pid = storage.child.pid;
  const before = processMemoryMb(pid, "VmRSS");

  const sockets: Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  const get = `GET /v1/kv/big HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`;
  // Three such clients, so a bound per connection that were still too loose would show. Each sends its
  // GETs one write at a time, 2 ms apart, so they reach the server in many socket reads (all in one
  // read would let even a server that answers whatever it has read look bounded).
  for (let i = 0; i < 3; i++) sockets.push(await openSilent(storage.port));
  const pipelining = (async () => {
    for (let n = 0; n < 300; n++) {
      for (const s of sockets) s.write(get);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const rounds = await servedMeanwhile(storage, 3000);
  await pipelining;
  const peak = processMemoryMb(pid, "VmHWM");
  t.diagnostic(
    `server RSS before ${before.toFixed(1)} MB, peak ${peak.toFixed(1)} MB with 3 x 300 unread 1 MiB ` +
      `replies requested (900 MiB); ${rounds} write+read round trips of another client meanwhile`,
  );
  assert.ok(peak < LIMIT_MB, `peak RSS ${peak.toFixed(1)} MB >= ${LIMIT_MB} MB`);
  assert.ok(
    sockets.every((s) => !s.destroyed),
    "the server kept the slow readers' connections",
  );
  // The hand-written server added a `drain` listener per queued reply.
  const warnings = storage.child.recent.filter((l) => l.includes("MaxListenersExceededWarning"));
  assert.deepEqual(warnings, [], "listener leak warnings on the server's stderr");
});

test("a flood of requests without the token, never read, keeps the server under 150 MB", async (t) => {
  const storage = await startStorage({ authToken: TOKEN });
  t.after(() => storage.stop());
  const pid = storage.child.pid;
  const before = processMemoryMb(pid, "VmRSS");

  const sockets: Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  // Tiny requests, so one socket read holds as many as possible; every one gets a 401.
  const batch = Buffer.from("GET /v1/fences/f HTTP/1.1\r\nHost: t\r\n\r\n".repeat(1000), "latin1");
  const perBatch = 1000;
  const maxRequests = 1_500_000;
  let sent = 0;
  const flood = async (socket: Socket, deadline: number) => {
    while (Date.now() < deadline && sent < maxRequests && !socket.destroyed) {
      sent += perBatch;
      if (!socket.write(batch)) {
        // The server stopped reading; wait for room, but no longer than the flood lasts.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          socket.once("drain", () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
  };
  const deadline = Date.now() + 3000;
  const floods: Promise<void>[] = [];
  // Six clients: each holds a whole socket read of parsed requests, so the bound over all connections
  // is what keeps this one.
  for (let i = 0; i < FLOODERS; i++) {
    const s = await openSilent(storage.port);
    s.on("error", () => {});
    sockets.push(s);
    floods.push(flood(s, deadline));
  }
  const rounds = await servedMeanwhile(storage, 3000);
  await Promise.all(floods);
  const accepted = sockets.reduce((sum, s) => sum + s.bytesWritten - s.writableLength, 0);
  const cut = sockets.filter((s) => s.destroyed).length;
  const peak = processMemoryMb(pid, "VmHWM");
  t.diagnostic(
    `server RSS before ${before.toFixed(1)} MB, peak ${peak.toFixed(1)} MB; ${sent} requests written by ` +
      `${FLOODERS} flooding clients, ${(accepted / MiB).toFixed(1)} MiB of them taken by the kernel, ${cut} ` +
      `of the clients cut by the server; ${rounds} write+read round trips of another client meanwhile`,
  );
  assert.ok(peak < LIMIT_MB, `peak RSS ${peak.toFixed(1)} MB >= ${LIMIT_MB} MB`);
});
